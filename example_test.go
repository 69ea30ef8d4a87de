package ntpctl_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/mode7"
)

// Scan a constituency for monlist amplifiers, a shard at a time, at a
// polite rate. (Scan only networks you are allowed to scan.)
func ExampleNewProber() {
	var targets ntpctl.TargetSet
	if _, err := targets.ReadFrom(strings.NewReader("198.51.100.0/24\n203.0.113.0/24 # constituency\n")); err != nil {
		panic(err)
	}
	order, err := targets.Permuted(ntpctl.PermuteOptions{Port: 123, Seed: 42})
	if err != nil {
		panic(err)
	}
	p, err := ntpctl.NewProber(ntpctl.Config{Rate: 1000, Retries: 1}, ntpctl.MonList())
	if err != nil {
		panic(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	_ = p.Run(ctx, order, func(r ntpctl.Result[mode7.Reply]) error {
		if r.Status == ntpctl.StatusOK {
			fmt.Printf("%v: %d clients, %d packets, %.0fx amplification\n",
				r.Target.Addr(), len(r.Value.Entries), r.Packets, r.Amplification())
		}
		return nil
	})
	// Both documentation prefixes are on the default blocklist, so this
	// example sends nothing.
	st := p.Stats()
	fmt.Println(st.Targets, "targets,", st.Statuses.Blocked, "blocked,", st.Sent, "sent")
	// Output:
	// 512 targets, 512 blocked, 0 sent
}

// Check one host, as ntpq -c rv does. A tool that checks hosts its user
// names lifts the built-in blocklist; this one keeps it, and the
// documentation address is refused without a packet sent.
func ExampleQuery() {
	cfg := ntpctl.Config{Timeout: time.Second, Retries: 1}
	res, err := ntpctl.Query(context.Background(), cfg, ntpctl.ReadVar(), netip.MustParseAddrPort("192.0.2.10:123"))
	if err != nil {
		panic(err)
	}
	if v, ok := res.Value.Vars.Lookup("version"); ok {
		fmt.Println("version:", v)
	}
	fmt.Println(res.Status, errors.Is(res.Err, ntpctl.ErrBlocked))
	// Output:
	// blocked true
}

// Parse targets the way a target file or command line gives them.
func ExampleParseRange() {
	for _, spec := range []string{"192.0.2.7", "192.0.2.0/30", "192.0.2.1-20", "2001:db8::/127"} {
		r, err := ntpctl.ParseRange(spec)
		if err != nil {
			panic(err)
		}
		fmt.Println(r, r.Size())
	}
	// Output:
	// 192.0.2.7 1
	// 192.0.2.0-192.0.2.3 4
	// 192.0.2.1-192.0.2.20 20
	// 2001:db8::-2001:db8::1 2
}

// The default blocklist refuses reserved ranges; loopback only on request.
func ExampleBlocklist() {
	var b ntpctl.Blocklist
	for _, a := range []string{"192.168.1.1", "127.0.0.1", "8.8.8.8"} {
		fmt.Printf("%s: %q\n", a, b.Reason(netip.MustParseAddr(a)))
	}
	lab := ntpctl.Blocklist{AllowLoopback: true}
	fmt.Println(lab.Allowed(netip.MustParseAddr("127.0.0.1")))
	// Output:
	// 192.168.1.1: "IANA special-purpose range"
	// 127.0.0.1: "loopback"
	// 8.8.8.8: ""
	// true
}

// Split a scan across three machines: the shards are disjoint and
// together cover every index once.
func ExamplePermutation_Shard() {
	p, err := ntpctl.NewPermutation(10, 7)
	if err != nil {
		panic(err)
	}
	total := 0
	for i := range 3 {
		shard, _ := p.Shard(i, 3)
		n := 0
		for range shard {
			n++
		}
		total += n
	}
	fmt.Println(total)
	// Output:
	// 10
}

// Fetch one server's MRU list, as ntpq -c mrulist does, and count the
// clients it shows to anyone who asks. (The documentation address is on
// the default blocklist: nothing is sent.)
func ExampleMRUList() {
	cfg := ntpctl.Config{Timeout: time.Second, Retries: 1}
	res, err := ntpctl.Query(context.Background(), cfg, ntpctl.MRUList(), netip.MustParseAddrPort("192.0.2.10:123"))
	if err != nil {
		panic(err)
	}
	if res.Status == ntpctl.StatusOK {
		fmt.Printf("%d clients exposed, the whole list: %v\n", len(res.Value.Entries), res.Value.Complete)
	}
	fmt.Println(res.Status)
	// Output:
	// blocked
}
