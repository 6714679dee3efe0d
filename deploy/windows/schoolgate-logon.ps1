<#
.SYNOPSIS
  Tells schoolgate who signed in to (or out of) this Windows machine, so that
  its web and DNS traffic carries the user's name and profile (docs/identity.md).

.DESCRIPTION
  Sends POST /api/identity to the gateway's admin listener with
  {"user","ip","action","ts"}, signed with HMAC-SHA256 of the raw body under the
  shared secret (header X-Schoolgate-Signature: sha256=<lowercase hex>).

  Run it as SYSTEM from a scheduled task (triggers: "At log on" of any user with
  -Action logon, and an event trigger for logoff / "On workstation lock" as you
  prefer with -Action logoff), not as a user logon script: the secret file must
  be readable by SYSTEM and Administrators only, or any pupil could read it and
  name themselves as a member of staff. Run as SYSTEM, the script finds the
  signed-in user itself (Win32_ComputerSystem.UserName).

  The gateway accepts a body only when its ts is within 5 minutes of the
  gateway's clock (keep Windows time in sync with the domain), once, and from
  the address it names (unless the sender is in admin.allow).

.EXAMPLE
  schoolgate-logon.ps1 -Gateway http://10.0.0.1:9090 -Action logon
#>
param(
    [Parameter(Mandatory = $true)] [string] $Gateway,          # the admin listener, e.g. http://10.0.0.1:9090
    [ValidateSet('logon', 'logoff')] [string] $Action = 'logon',
    [string] $SecretFile = "$env:ProgramData\schoolgate\identity-api.secret",
    [string] $User = ''                                       # default: the console user
)
$ErrorActionPreference = 'Stop'

if (-not $User) {
    $User = (Get-CimInstance -ClassName Win32_ComputerSystem).UserName   # DOMAIN\name
    if (-not $User) { $User = $env:USERNAME }
}
# The gateway's users are plain names, as in the users file: drop DOMAIN\ and @realm.
$User = ($User -split '\\')[-1]
$User = ($User -split '@')[0]

# The address the gateway sees this machine at: the source address of the
# route to it.
$gwHost = ([Uri]$Gateway).Host
$gwAddr = [System.Net.Dns]::GetHostAddresses($gwHost) | Select-Object -First 1
$sock = New-Object System.Net.Sockets.Socket($gwAddr.AddressFamily, [System.Net.Sockets.SocketType]::Dgram, [System.Net.Sockets.ProtocolType]::Udp)
try {
    $sock.Connect($gwAddr, 9)
    $ip = $sock.LocalEndPoint.Address.ToString()
} finally { $sock.Dispose() }

$secret = (Get-Content -Raw -LiteralPath $SecretFile).Trim()
if (-not $secret) { throw "secret file $SecretFile is empty" }

$ts = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
$body = @{ user = $User; ip = $ip; action = $Action; ts = $ts } | ConvertTo-Json -Compress
$bytes = [System.Text.Encoding]::UTF8.GetBytes($body)

$hmac = New-Object System.Security.Cryptography.HMACSHA256 -ArgumentList (, [System.Text.Encoding]::UTF8.GetBytes($secret))
$sig = -join ($hmac.ComputeHash($bytes) | ForEach-Object { $_.ToString('x2') })

# A network not up yet at logon is usual: try a few times, each with a fresh ts.
for ($i = 1; $i -le 5; $i++) {
    try {
        Invoke-WebRequest -UseBasicParsing -Method Post -Uri ($Gateway.TrimEnd('/') + '/api/identity') `
            -ContentType 'application/json' -Body $bytes `
            -Headers @{ 'X-Schoolgate-Signature' = "sha256=$sig" } | Out-Null
        exit 0
    } catch {
        $status = $_.Exception.Response.StatusCode.value__
        if ($status -in 400, 403) { throw }   # the gateway read it and said no: retrying will not help
        Start-Sleep -Seconds (5 * $i)
        $ts = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
        $body = @{ user = $User; ip = $ip; action = $Action; ts = $ts } | ConvertTo-Json -Compress
        $bytes = [System.Text.Encoding]::UTF8.GetBytes($body)
        $sig = -join ($hmac.ComputeHash($bytes) | ForEach-Object { $_.ToString('x2') })
    }
}
exit 1
