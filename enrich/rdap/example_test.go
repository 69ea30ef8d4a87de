package rdap_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ntpctl/ntpctl/enrich/rdap"
)

// ExampleClient is compiled, not run: it would query a registry.
func ExampleClient() {
	c := &rdap.Client{
		// Or a Bootstrap read with rdap.ParseBootstrap from IANA's
		// ipv4.json and ipv6.json.
		Servers:   []string{"https://rdap.arin.net/registry"},
		UserAgent: "ntpctl",
	}
	a, err := c.LookupAbuse(context.Background(), netip.MustParseAddr("192.0.2.1"))
	fmt.Println(a.Email, a.Source, err)
}

// ExampleParseBootstrap reads an IANA bootstrap file (RFC 9224), here a
// two-service excerpt, and asks which RDAP servers hold an address. No
// request is sent.
func ExampleParseBootstrap() {
	const ipv4JSON = `{
	  "version": "1.0",
	  "publication": "2024-01-01T00:00:00Z",
	  "services": [
	    [["192.0.0.0/8"], ["http://rdap.example.net/", "https://rdap.example.net/"]],
	    [["192.0.2.0/24"], ["https://rdap.example.org/rdap/"]]
	  ]
	}`
	b, err := rdap.ParseBootstrap(strings.NewReader(ipv4JSON), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range []string{"192.0.2.1", "192.168.1.1", "::ffff:192.0.2.1", "203.0.113.1"} {
		fmt.Println(s, b.Servers(netip.MustParseAddr(s)))
	}
	// Output:
	// 192.0.2.1 [https://rdap.example.org/rdap/]
	// 192.168.1.1 [https://rdap.example.net/ http://rdap.example.net/]
	// ::ffff:192.0.2.1 [https://rdap.example.org/rdap/]
	// 203.0.113.1 []
}
