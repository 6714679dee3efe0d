package admin

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pacShim defines the PAC helper functions as browsers do (the subset
// the script uses; isInNet on dotted IPv4 only, as PAC has it), then asks
// the script about each argument pair.
const pacShim = `
function isPlainHostName(h) { return h.indexOf(".") < 0; }
function dnsDomainIs(h, d) { return h.length >= d.length && h.substring(h.length - d.length) == d; }
function ip4(s) { var p = s.split("."); return ((+p[0] << 24) >>> 0) + (+p[1] << 16) + (+p[2] << 8) + (+p[3]); }
function isInNet(h, pat, mask) { return ((ip4(h) & ip4(mask)) >>> 0) == ((ip4(pat) & ip4(mask)) >>> 0); }
function hextets(a) {
  var halves = a.split("::"), head = halves[0] ? halves[0].split(":") : [], tail = halves.length > 1 && halves[1] ? halves[1].split(":") : [];
  var mid = []; for (var i = head.length + tail.length; i < 8; i++) mid.push("0");
  return head.concat(halves.length > 1 ? mid : [], tail).map(function (x) { return parseInt(x, 16); });
}
function isInNetEx(h, cidr) {
  var p = cidr.split("/"), a = hextets(h), b = hextets(p[0]), bits = +p[1];
  for (var i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    var m = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if ((a[i] & m) != (b[i] & m)) return false;
  }
  return true;
}
var args = process.argv.slice(2);
for (var i = 0; i < args.length; i += 2) console.log(FindProxyForURL(args[i], args[i + 1]));
`

// The PAC script run by a real JavaScript engine (node): IPv6 literals
// are not plain host names, plain names and the school's networks go
// direct, the rest to the proxy.
func TestPACInJavaScript(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: the PAC script is not run (apt install nodejs)")
	}
	pac := PAC("10.0.0.1:3128", []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00:5c::/32")})
	script := filepath.Join(t.TempDir(), "pac.js")
	if err := os.WriteFile(script, append(pac, pacShim...), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ url, host, want string }{
		{"http://intranet/", "intranet", "DIRECT"},
		{"http://localhost:8080/", "localhost", "DIRECT"},
		{"http://[::1]/", "::1", "DIRECT"},
		{"http://10.20.3.4/", "10.20.3.4", "DIRECT"},
		{"https://www.bet365.com/", "www.bet365.com", "PROXY 10.0.0.1:3128"},
		{"http://8.8.8.8/", "8.8.8.8", "PROXY 10.0.0.1:3128"},
		// IPv6 literals have no dot: isPlainHostName alone calls them plain.
		{"http://[2001:db8::1]/", "2001:db8::1", "PROXY 10.0.0.1:3128"},
		{"https://[2606:4700::6810:84e5]/", "2606:4700::6810:84e5", "PROXY 10.0.0.1:3128"},
		{"http://[2001:db8::1]/", "[2001:db8::1]", "PROXY 10.0.0.1:3128"},
		// The school's IPv6 network stays direct (isInNetEx).
		{"http://[fd00:5c:1::7]/", "fd00:5c:1::7", "DIRECT"},
		{"http://[fd00:5d::7]/", "fd00:5d::7", "PROXY 10.0.0.1:3128"},
	}
	args := []string{script}
	for _, c := range cases {
		args = append(args, c.url, c.host)
	}
	out, err := exec.Command(node, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s\n%s", err, out, pac)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(got) != len(cases) {
		t.Fatalf("got %d answers for %d cases:\n%s", len(got), len(cases), out)
	}
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("FindProxyForURL(%q, %q) = %q, want %q", c.url, c.host, got[i], c.want)
		}
	}
}
