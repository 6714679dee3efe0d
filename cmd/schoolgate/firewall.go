package main

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/schoolgate/schoolgate/firewall"
)

const firewallUsage = `usage: schoolgate firewall [-config FILE] [-apply]

Prints the nftables ruleset of transparent gateway mode for the config (one
table, "table inet schoolgate"): from the clients networks, TCP 80 and 443
redirected to listen.transparent_http and listen.transparent_https, DNS (UDP
and TCP 53, to any resolver) to listen.dns, QUIC (UDP 80 and 443) and DNS over
TLS or QUIC (853) rejected at once (ICMP port unreachable, TCP reset) so
clients fall back to what the filter reads. The gateway's own traffic is not
touched. See docs/proxy.md, "Transparent gateway mode".

Exit status: 0 when printed (or loaded); 1 when the config cannot make a
ruleset (no transparent listener, a listener on loopback only) or nft refuses
it; 2 for bad usage.

  -config FILE  the config (default: the embedded default config)
  -apply        load the ruleset with "nft -f -" (as root) instead of printing
                it; it replaces only table inet schoolgate
`

// runFirewall is `schoolgate firewall`.
func runFirewall(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("firewall", firewallUsage, stderr)
	cfgPath := configFlag(fs, "the config")
	apply := fs.Bool("apply", false, "load the ruleset with nft -f -")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "schoolgate firewall: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate firewall: %v\n", err)
		return 1
	}
	rules, err := firewall.Ruleset(cfg, describeConfig(*cfgPath))
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "schoolgate firewall: %s\n", line)
		}
		return 1
	}
	if !*apply {
		fmt.Fprint(stdout, rules)
		return 0
	}
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(stderr, "schoolgate firewall: loading the ruleset with nft: %v\n%s", err, out.String())
		return 1
	}
	fmt.Fprintf(stdout, "loaded table %s\n", firewall.Table)
	return 0
}
