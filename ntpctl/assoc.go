package main

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/mode6"
)

// assocArg is a value of --assoc as ntpq's rv takes it: an association ID,
// or "&N", the N-th association of the list (ntpq -c as; 1 is the first).
type assocArg struct {
	id    uint16
	index int // N of "&N"; 0 for an ID
}

// parseAssoc parses --assoc; its errors name the flag.
func parseAssoc(s string) (assocArg, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return assocArg{}, nil
	}
	if rest, ok := strings.CutPrefix(s, "&"); ok {
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || n > 65535 {
			return assocArg{}, fmt.Errorf("--assoc %s: want &N with N from 1, the N-th association of ntpctl peers", termSafe(s))
		}
		return assocArg{index: n}, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return assocArg{}, fmt.Errorf("--assoc %s: want an association ID, 0 to 65535, or &N", termSafe(s))
	}
	return assocArg{id: uint16(n)}, nil
}

// readAssocs asks target for its association list: a READSTAT of
// association 0, as ntpq -c as does.
func (e env) readAssocs(ctx context.Context, c *common, target netip.AddrPort) (ntpctl.Result[mode6.Reply], []mode6.AssocStatus, error) {
	probe := &ntpctl.ReadVarProbe{Op: mode6.OpReadStat}
	r, err := ntpctl.Query(ctx, e.config(c), probe, target)
	if err != nil {
		return r, nil, err
	}
	return r, mode6.AppendAssocStatuses(nil, r.Value.Data), nil
}

// resolveAssoc turns "&N" into the N-th association ID of target's list.
// When the list query did not succeed, it returns that query's result,
// for the caller to report with its status.
func (e env) resolveAssoc(ctx context.Context, c *common, target netip.AddrPort, a assocArg) (uint16, *ntpctl.Result[mode6.Reply], error) {
	if a.index == 0 {
		return a.id, nil, nil
	}
	r, list, err := e.readAssocs(ctx, c, target)
	if err != nil {
		return 0, nil, err
	}
	if r.Status != ntpctl.StatusOK {
		return 0, &r, nil
	}
	if a.index > len(list) {
		return 0, nil, fmt.Errorf("--assoc &%d: %s lists %s", a.index, target, plural(len(list), "association"))
	}
	return list[a.index-1].AssocID, nil, nil
}
