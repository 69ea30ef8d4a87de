package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ntpctl/ntpctl/internal/lab"
	"github.com/ntpctl/ntpctl/internal/schematest"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAssocFlagErrors: a bad --assoc is a usage error that names the flag
// as it is written, --assoc (the flag package's own message said -assoc).
func TestAssocFlagErrors(t *testing.T) {
	for _, v := range []string{"x", "65536", "-1", "&0", "&x", "&"} {
		_, errOut, code := runCmd(t, env{}, "rv", "--assoc", v, "127.0.0.1")
		assert.Equal(t, exitError, code, v)
		assert.Contains(t, errOut, "--assoc "+v+":", v)
		assert.NotContains(t, strings.ReplaceAll(errOut, "--assoc", ""), "-assoc", v)
	}
}

// TestAssocIndex: --assoc &1 reads the first association of the list, as
// ntpq's "rv &1"; &N past the list is an error naming --assoc.
func TestAssocIndex(t *testing.T) {
	h := hostWhere(t, func(h lab.Host) bool { return strings.HasPrefix(h.Daemon, "ntpd 4.2.8") })
	out, errOut, code := runCmd(t, env{}, "rv", "--assoc", "&1", h.Addr.String())
	require.Equal(t, exitOK, code, errOut)
	first, _ := parseRV(t, out)
	assert.True(t, strings.HasPrefix(first, fmt.Sprintf("associd=%d ", h.PeerAssoc)), first)

	_, errOut, code = runCmd(t, env{}, "rv", "--assoc", fmt.Sprintf("&%d", len(h.Sim.Peers)+1), h.Addr.String())
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, fmt.Sprintf("--assoc &%d: %s lists %d association", len(h.Sim.Peers)+1, h.Addr, len(h.Sim.Peers)))

	// When the list does not come, that query's outcome is the answer,
	// with its own exit status, as plain rv would give.
	silent := hostWhere(t, kind(lab.Silent))
	out, errOut, code = runCmd(t, env{}, append([]string{"rv", "--assoc", "&1"}, append(fastArgs, silent.Addr.String())...)...)
	assert.Equal(t, exitNoAnswer, code, errOut)
	assert.Equal(t, fmt.Sprintf("%s: no answer to READSTAT (the association list --assoc &1 needs) (1 request sent, no reply within the timeout).\n", silent.Addr), out)
	js, _, code := runCmd(t, env{}, append([]string{"rv", "--json", "--assoc", "&1"}, append(fastArgs, silent.Addr.String())...)...)
	assert.Equal(t, exitNoAnswer, code)
	schematest.Validate(t, "ntpctl_rv", []byte(js))
	closed := netip.AddrPortFrom(h.Addr.Addr(), 9) // nothing listens on the discard port of a lab address
	_, _, code = runCmd(t, env{}, "rv", "--assoc", "&1", closed.String())
	assert.Equal(t, exitNoService, code, "ICMP port unreachable")
}

// TestJunkNote: when parsing dropped junk octets from a reply, the text
// says how many, and --json has the count in variables.parse.dropped.
func TestJunkNote(t *testing.T) {
	h := hostWhere(t, func(h lab.Host) bool { return h.Hostile == "junk-values" })
	out, errOut, code := runCmd(t, env{}, "rv", h.Addr.String())
	require.Equal(t, exitOK, code, errOut)
	var j report.JSONRecord
	js, _, _ := runCmd(t, env{}, "rv", "--json", h.Addr.String())
	schematest.Validate(t, "ntpctl_rv", []byte(js))
	require.NoError(t, json.Unmarshal([]byte(js), &j))
	require.NotNil(t, j.Variables)
	require.Positive(t, j.Variables.Parse.Dropped)
	assert.Contains(t, out, fmt.Sprintf("\nnote: %d junk octets dropped from the reply", j.Variables.Parse.Dropped))

	clean := hostWhere(t, func(h lab.Host) bool { return strings.HasPrefix(h.Daemon, "ntpd 4.2.8") })
	out, _, _ = runCmd(t, env{}, "rv", clean.Addr.String())
	assert.NotContains(t, out, "junk")
}

// TestPeers: ntpctl peers (and as) lists the simulated associations as
// ntpq -c as prints them, and --json validates against ntpctl_peers.
func TestPeers(t *testing.T) {
	h := hostWhere(t, func(h lab.Host) bool { return strings.HasPrefix(h.Daemon, "ntpd 4.2.8") })
	for _, cmd := range []string{"peers", "as"} {
		out, errOut, code := runCmd(t, env{}, cmd, h.Addr.String())
		require.Equal(t, exitOK, code, errOut)
		assert.True(t, strings.HasPrefix(out, "\nind assid status  conf reach auth condition  last_event cnt\n"+strings.Repeat("=", 59)+"\n"), out)
		assert.Contains(t, out, fmt.Sprintf("\n  1 %5d  961a   yes   yes  none  sys.peer    sys_peer  1\n", h.PeerAssoc))
		assert.Contains(t, out, "READSTAT answered: 1 packet")
	}
	js, _, code := runCmd(t, env{}, "peers", "--json", h.Addr.String())
	require.Equal(t, exitOK, code)
	schematest.Validate(t, "ntpctl_peers", []byte(js))
	var j report.JSONPeers
	require.NoError(t, json.Unmarshal([]byte(js), &j))
	require.Len(t, j.Associations, len(h.Sim.Peers))
	assert.Equal(t, report.JSONAssoc{Index: 1, AssocID: h.PeerAssoc, StatusWord: 0x961a, Conf: "yes", Reach: "yes",
		Auth: "none", Condition: "sys.peer", LastEvent: "sys_peer", EventCount: 1}, j.Associations[0])
	js, _, code = runCmd(t, env{}, append([]string{"peers", "--json"}, append(fastArgs, hostWhere(t, kind(lab.Silent)).Addr.String())...)...)
	assert.Equal(t, exitNoAnswer, code)
	schematest.Validate(t, "ntpctl_peers", []byte(js))
}
