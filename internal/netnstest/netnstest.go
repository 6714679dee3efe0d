// Package netnstest makes network namespaces for tests that need the
// kernel's view of a network (firewall redirects, SO_ORIGINAL_DST) without
// touching the machine's own: made with iproute2, deleted when the test
// ends, skipped with a clear message where that cannot be done (not root,
// no ip, no netns support).
package netnstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// New makes a network namespace named prefix plus the process id, with
// its loopback up, and returns its name; it is deleted at the test's
// cleanup. The test is skipped when that cannot be done here.
func New(t testing.TB, prefix string, need ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, bin := range append([]string{"ip"}, need...) {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	ns := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() }) //nolint:errcheck
	Exec(t, ns, "", "ip", "link", "set", "lo", "up")
	return ns
}

// Exec runs a command inside ns, with stdin, and fails the test if it
// fails.
func Exec(t testing.TB, ns, stdin string, args ...string) {
	t.Helper()
	c := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	c.Stdin = strings.NewReader(stdin)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("in %s: %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
}

// Run runs f on an OS thread moved into network namespace ns: the sockets
// f makes belong to ns for good, whichever goroutine uses them later. The
// thread goes back to its own namespace after f, or is thrown away if it
// cannot.
func Run(ns string, f func() error) error {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return err
	}
	err = f()
	if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return err
}

// Redirected returns a listener on 127.0.0.1 inside ns to which nftables
// there redirects every TCP connection to port on one of dests, as a
// gateway's firewall redirects a device's traffic to the transparent
// listeners (SO_ORIGINAL_DST then gives the address asked for).
func Redirected(t testing.TB, ns string, port int, dests ...string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := Run(ns, func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	Exec(t, ns, fmt.Sprintf(`table ip sgtest {
	chain out {
		type nat hook output priority -100; policy accept;
		ip daddr { %s } tcp dport %d redirect to :%d
	}
}
`, strings.Join(dests, ", "), port, ln.Addr().(*net.TCPAddr).Port), "nft", "-f", "-")
	return ln
}
