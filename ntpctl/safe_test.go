package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/internal/schematest"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"ntpd 4.2.8p15":    "ntpd 4.2.8p15",
		"":                 "",
		"\x1b]0;owned\x07": "^[]0;owned^G",
		"a\x1b[2Jb":        "a^[[2Jb",
		"\r\n\t\x00\x7f":   "^M^J^I^@^?",
		"\x9b31m":          "M-^[31m",
		"\u009b31m":        "M-BM-^[31m", // C1 CSI in UTF-8
		"\u202egnp.exe":    "M-bM-^@M-.gnp.exe",
		"\xff\xfe":         "M-^?M-~",
		"caf\u00e9":        "cafM-CM-)",
	} {
		got := termSafe(in)
		assert.Equal(t, want, got, "%q", in)
		assertTermSafe(t, got)
	}
}

// assertTermSafe checks that s holds nothing a terminal would act on
// but newlines: printable ASCII only.
func assertTermSafe(t *testing.T, s string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\n' && (c < ' ' || c > '~') {
			t.Errorf("octet %#02x at %d printed raw: %q", c, i, s[max(i-20, 0):min(i+20, len(s))])
			return
		}
	}
}

func TestJSONSafe(t *testing.T) {
	v := map[string]string{"v": "a\x1b[2J\u009b31m\u202e\u2028\x7f\U000e0041\xffz"}
	var b strings.Builder
	writeJSON(&b, v)
	out := b.String()
	for _, r := range out {
		assert.True(t, r == '\n' || (r >= ' ' && r <= '~') || (unicode.IsPrint(r) && r != 0x7f),
			"%U printed raw in %q", r, out)
	}
	assert.Contains(t, out, `\u001b[2J\u009b31m\u202e\u2028\u007f\udb40\udc41`)
	var back map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &back))
	assert.Equal(t, "a\x1b[2J\u009b31m\u202e\u2028\x7f\U000e0041\ufffdz", back["v"], "the same string, invalid UTF-8 aside")
}

// hostileVars are system variables a malicious server could send: escape
// sequences, C1 controls, a bidirectional override and invalid UTF-8, in
// quoted values (which keep their octets) and in names and plain values
// (whose control octets the parser drops).
var hostileVars = mode6.Vars{
	{Name: "version", Value: "ntpd 4.2.6p5 \x1b]0;owned\x07\x1b[2J\u009b2J\x9b1m\u202eexe.txt\xff", Quoted: true},
	{Name: "processor", Value: "x86_64\x1b[31m", Quoted: true},
	{Name: "system", Value: "Linux\r\n\x1b[Ainjected", Quoted: true},
	{Name: "stratum\x1b[5m", Value: "2\x1b[0m"},
	{Name: "refid", Value: "192.0.2.1\x9b2J"},
	{Name: "leap", Value: "0"},
}

// TestHostileVariables: whatever a server puts in its variables, rv and
// check never print a control character or an octet outside ASCII to
// the terminal, and --json is valid JSON with those characters escaped.
func TestHostileVariables(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	host := &ntpsim.Host{Mode6: ntpsim.Mode6Classic, Mode7: ntpsim.Mode7Silent, System: hostileVars,
		Status: 0x0615, Peers: []ntpsim.Peer{{AssocID: 7, Status: 0x961a, Vars: hostileVars}}}
	srv, err := ntpsim.Start(ctx, "udp4", "127.0.0.1:0", ntpsim.Config{Default: host})
	require.NoError(t, err)
	defer srv.Close()
	target := fmt.Sprintf("127.0.0.1:%d", srv.Port())

	for _, args := range [][]string{
		{"rv", target},
		{"rv", "--assoc", "7", target},
		{"rv", target, "version,system"},
		{"check", "--timeout", "300ms", "--retries", "0", target},
	} {
		out, errOut, code := runCmd(t, env{}, args...)
		require.NotEqual(t, exitError, code, "%q: %s", args, errOut)
		assertTermSafe(t, out)
		assertTermSafe(t, errOut)
		if args[0] == "rv" {
			assert.Contains(t, out, `"ntpd 4.2.6p5 ]0;owned[2JM-BM-^[2JM-^[1mM-bM-^@M-.exe.txtM-^?"`,
				"the quoted value, its ESC and BEL dropped by the parser, the rest escaped")
		} else {
			assert.Contains(t, out, "version: ntpd 4.2.6p5 ]0;owned[2JM-BM-^[2J")
		}

		out, _, code = runCmd(t, env{}, append(args[:1:1], append([]string{"--json"}, args[1:]...)...)...)
		require.NotEqual(t, exitError, code, "%q", args)
		require.True(t, utf8.ValidString(out))
		for _, r := range out {
			assert.True(t, r == '\n' || (r >= ' ' && r <= '~'), "%U printed raw by %q --json", r, args)
		}
		var j map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &j), out)
		schematest.Validate(t, "ntpctl_"+args[0], []byte(out))
		assert.Contains(t, out, `\u009b2J`)
		assert.Contains(t, out, `\u202eexe.txt`)
	}
}

// TestMonlistEmptyList: a monitor list with no entries is an answer, but
// no amplification, and the summary does not call the server an
// amplifier.
func TestMonlistEmptyList(t *testing.T) {
	r := ntpctl.Result[mode7.Reply]{Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.1:123"),
		Status: ntpctl.StatusOK, Packets: 1, Bytes: 8, RequestBytes: 48, Attempts: 1}}
	s := monlistSummary(&r)
	assert.Equal(t, "192.0.2.1:123: monlist answered: 0 entries, 1 packet, 8 bytes in reply to a 48-byte request: amplification 0.2; no larger than the request.", s)
	r.Bytes, r.Value.Entries = 80, make([]mode7.MonitorEntry, 1)
	assert.Contains(t, monlistSummary(&r), "This server is a monlist amplifier.")
}
