package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/report"
)

const peersUsage = `Usage: ntpctl peers [flags] HOST[:PORT]   (or: ntpctl as …)

Sends one Mode 6 READSTAT request of association 0 and prints the association list as
ntpsec's ntpq -c as does: ind (1 for the first: what --assoc &1 of ntpctl rv reads),
assid, the peer status word in hexadecimal and decoded (conf, reach, auth, condition,
last_event, cnt), then the packets and bytes that came back. --json prints one object
(report.JSONPeers, schema ntpctl_peers) with the associations under "associations".
`

// ntpqEvents are the last_event names of ntpsec 1.2.2's ntpq -c as
// (ntp/util.py PeerStatusWord): events 1 to 11, "" for the others.
var ntpqEvents = [16]string{"", "mobilize", "demobilize", "unreachable", "reachable", "restart",
	"no_reply", "rate_exceeded", "access_denied", "leap_armed", "sys_peer", "clock_alarm"}

// ntpqConditions are ntpq's names of the selection states 0 to 7.
var ntpqConditions = [8]string{"reject", "falsetick", "excess", "outlier", "candidate", "backup", "sys.peer", "pps.peer"}

// assocJSON decodes one association as ntpq -c as does.
func assocJSON(i int, a mode6.AssocStatus) report.JSONAssoc {
	j := report.JSONAssoc{Index: i + 1, AssocID: a.AssocID, StatusWord: a.Status.Word(), Conf: "no", Reach: "no",
		Auth: "bad", Condition: ntpqConditions[a.Status.Select&7], LastEvent: ntpqEvents[a.Status.Event&0xf],
		EventCount: int(a.Status.EventCount)}
	f := a.Status.Flags
	if f&mode6.PeerConfigured != 0 {
		j.Conf = "yes"
	}
	switch {
	case f&mode6.PeerBroadcast != 0:
		j.Reach = "none"
	case f&mode6.PeerReachable != 0:
		j.Reach = "yes"
	}
	switch {
	case f&mode6.PeerAuthEnabled == 0:
		j.Auth = "none"
	case f&mode6.PeerAuthentic != 0:
		j.Auth = "ok"
	}
	return j
}

func (e env) peers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlags("peers", peersUsage, exitStatusHelp, &c)
	pos, code := parseArgs(fs, args, &c, stdout, stderr)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, fs, errors.New("want one HOST[:PORT]"))
	}
	target, err := e.target(ctx, pos[0], uint16(c.port))
	if err != nil {
		return failure(stderr, "peers", err)
	}
	r, list, err := e.readAssocs(ctx, &c, target)
	if err != nil {
		return failure(stderr, "peers", err)
	}
	if r.Status == ntpctl.StatusSendError || r.Status == ntpctl.StatusBlocked {
		return failure(stderr, "peers", fmt.Errorf("%s: %s", target, errText(r.Err)))
	}
	j := report.JSONPeers{Time: r.Time.UTC(), IP: target.Addr().Unmap().String(), Port: target.Port(),
		Status: r.Status.String(), StatusWord: r.Value.Status, StatusText: report.StatusText(0, r.Value.Status),
		Associations: []report.JSONAssoc{}, Packets: r.Packets, Bytes: r.Bytes, RequestBytes: r.RequestBytes,
		Amplification: r.Amplification()}
	if r.Err != nil {
		j.Error = errText(r.Err)
	}
	for i, a := range list {
		j.Associations = append(j.Associations, assocJSON(i, a))
	}
	if c.json {
		if err := writeJSON(stdout, &j); err != nil {
			return failure(stderr, "peers", err)
		}
		return statusExit(r.Status)
	}
	if r.Status == ntpctl.StatusOK || r.Status == ntpctl.StatusPartial {
		io.WriteString(stdout, assocTable(j.Associations))
		fmt.Fprintln(stdout)
	}
	fmt.Fprintln(stdout, rvSummary(&r, "READSTAT"))
	return statusExit(r.Status)
}

// assocTable prints associations as ntpsec 1.2.2's ntpq -c as does: a
// blank line, the header and its rule, a row per association
// ("%3d %5u  %04x   %3.3s  %4s  %4.4s %9.9s %11s %2d"; auth "ok" as
// "ok "), or "No association IDs returned".
func assocTable(as []report.JSONAssoc) string {
	if len(as) == 0 {
		return "No association IDs returned\n"
	}
	var b strings.Builder
	b.WriteString("\nind assid status  conf reach auth condition  last_event cnt\n")
	b.WriteString(strings.Repeat("=", 59) + "\n")
	for _, a := range as {
		auth := a.Auth
		if auth == "ok" {
			auth = "ok "
		}
		fmt.Fprintf(&b, "%3d %5d  %04x   %3.3s  %4s  %4.4s %9.9s %11s %2d\n",
			a.Index, a.AssocID, a.StatusWord, a.Conf, a.Reach, auth, a.Condition, a.LastEvent, a.EventCount)
	}
	return b.String()
}
