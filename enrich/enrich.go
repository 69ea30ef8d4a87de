package enrich

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// ErrNotFound reports that a source has nothing about an address: no PTR
// record, no row in a database, no abuse contact in a registry's answer. It
// is an ordinary outcome, not a failure; test for it with [errors.Is], or
// drop it from a joined error with [IgnoreNotFound].
var ErrNotFound = errors.New("enrich: not found")

// ErrMalformed reports an answer or an input file that does not have the
// documented shape. The concrete error is a [*ParseError].
var ErrMalformed = errors.New("enrich: malformed data")

// ErrResponseTooLarge reports an HTTP response body longer than the
// configured cap (see the MaxBody field of package enrich/rdap's Client).
var ErrResponseTooLarge = errors.New("enrich: response too large")

// ErrNotConfigured reports a provider used without the configuration it
// needs, such as an RDAP client (package enrich/rdap) with no registry to
// ask.
var ErrNotConfigured = errors.New("enrich: provider not configured")

// ParseError describes input that could not be parsed: a Team Cymru TXT
// answer, a line of a static CSV table, an RDAP or bootstrap document. It
// matches [ErrMalformed] with [errors.Is].
type ParseError struct {
	// Source names what was parsed ("cymru origin", "static", a file
	// name, an URL).
	Source string
	// Line is the 1-based line number, or 0 when lines do not apply.
	Line int
	// Input is the offending text, shortened to at most 128 bytes.
	Input string
	// Reason says what is wrong.
	Reason string
	// Err is an underlying error, if any.
	Err error
}

// Error implements the error interface.
func (e *ParseError) Error() string {
	s := "enrich: " + e.Source
	if e.Line > 0 {
		s += fmt.Sprintf(" line %d", e.Line)
	}
	s += ": " + e.Reason
	if e.Input != "" {
		s += fmt.Sprintf(" in %q", e.Input)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is [ErrMalformed].
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

// Unwrap returns the underlying error, if any.
func (e *ParseError) Unwrap() error { return e.Err }

func parseErr(source string, line int, input, reason string, err error) *ParseError {
	const max = 128
	if len(input) > max {
		input = input[:max]
	}
	return &ParseError{Source: source, Line: line, Input: input, Reason: reason, Err: err}
}

// notFound wraps ErrNotFound with what was looked up and where.
func notFound(what string, addr netip.Addr) error {
	return fmt.Errorf("%w: %s %v", ErrNotFound, what, addr)
}

// IgnoreNotFound returns err without its [ErrNotFound] parts: nil when err
// is nil or says only "not found", and otherwise an error that still
// reports every failure. It walks errors joined with [errors.Join] (as
// [Chain] returns them) and errors wrapped with a single %w, so
//
//	if err := enrich.IgnoreNotFound(chain.Enrich(ctx, addr, &r)); err != nil {
//		// a source failed: a timeout, a SERVFAIL, a broken file
//	}
//
// separates failures from addresses a source simply does not know. An
// error that wraps a failure together with a not-found is kept whole. A
// provider reporting a not-found should wrap [ErrNotFound] alone (the
// underlying cause as text), so that it is not mistaken for a failure.
func IgnoreNotFound(err error) error {
	kept, _ := ignoreNotFound(err)
	return kept
}

// ignoreNotFound does the work of IgnoreNotFound and reports whether it
// dropped anything. It never compares errors with ==: an error's dynamic
// type may not be comparable (a slice of errors, say), and comparing two
// such values panics.
func ignoreNotFound(err error) (kept error, changed bool) {
	switch u := err.(type) {
	case nil:
		return nil, false
	case interface{ Unwrap() []error }:
		var rest []error
		for _, e := range u.Unwrap() {
			k, c := ignoreNotFound(e)
			changed = changed || c
			if k != nil {
				rest = append(rest, k)
			}
		}
		switch {
		case len(rest) == 0:
			return nil, true
		case !changed:
			return err, false
		}
		return errors.Join(rest...), true
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			if k, _ := ignoreNotFound(inner); k == nil {
				return nil, true
			}
			return err, false
		}
	}
	if errors.Is(err, ErrNotFound) {
		return nil, true
	}
	return err, false
}

// PTRLookup looks up the reverse DNS names of an address.
// Implementations are safe for concurrent use.
type PTRLookup interface {
	// LookupPTR returns the names without their trailing dot, or an
	// error matching [ErrNotFound] when there are none.
	LookupPTR(ctx context.Context, addr netip.Addr) ([]string, error)
}

// ASNLookup looks up the autonomous system that originates an address.
// Implementations are safe for concurrent use.
type ASNLookup interface {
	// LookupASN returns the AS, or an error matching [ErrNotFound]. It
	// may return a partial ASN (a number without a name) with an error.
	LookupASN(ctx context.Context, addr netip.Addr) (ASN, error)
}

// GeoLookup looks up where an address is located.
// Implementations are safe for concurrent use.
type GeoLookup interface {
	// LookupGeo returns the location, or an error matching [ErrNotFound].
	LookupGeo(ctx context.Context, addr netip.Addr) (Geo, error)
}

// AbuseLookup looks up the abuse contact of the network holding an address.
// Implementations are safe for concurrent use.
type AbuseLookup interface {
	// LookupAbuse returns the contact, or an error matching [ErrNotFound].
	LookupAbuse(ctx context.Context, addr netip.Addr) (Abuse, error)
}

// An Enricher fills the parts of r it knows about addr. It fills only
// fields that are still empty (see [Result.Merge]), so that in a [Chain]
// the first source to know a value wins. It returns an error matching
// [ErrNotFound] when it knows nothing; it may fill some fields and still
// return an error. Implementations are safe for concurrent use, each call
// with its own r.
type Enricher interface {
	// Enrich merges what it knows about addr into r and returns its
	// error, if any (see [Chain] for how errors combine).
	Enrich(ctx context.Context, addr netip.Addr, r *Result) error
}

// Func adapts a function to [Enricher].
type Func func(ctx context.Context, addr netip.Addr, r *Result) error

// Enrich calls f(ctx, addr, r).
func (f Func) Enrich(ctx context.Context, addr netip.Addr, r *Result) error {
	return f(ctx, addr, r)
}

// FromPTR adapts a [PTRLookup] to an [Enricher] that fills [Result.Names].
func FromPTR(l PTRLookup) Enricher {
	return Func(func(ctx context.Context, addr netip.Addr, r *Result) error {
		names, err := l.LookupPTR(ctx, addr)
		r.Merge(Result{Names: names})
		return err
	})
}

// FromASN adapts an [ASNLookup] to an [Enricher] that fills [Result.ASN].
func FromASN(l ASNLookup) Enricher {
	return Func(func(ctx context.Context, addr netip.Addr, r *Result) error {
		a, err := l.LookupASN(ctx, addr)
		r.Merge(Result{ASN: a})
		return err
	})
}

// FromGeo adapts a [GeoLookup] to an [Enricher] that fills [Result.Geo].
func FromGeo(l GeoLookup) Enricher {
	return Func(func(ctx context.Context, addr netip.Addr, r *Result) error {
		g, err := l.LookupGeo(ctx, addr)
		r.Merge(Result{Geo: g})
		return err
	})
}

// FromAbuse adapts an [AbuseLookup] to an [Enricher] that fills
// [Result.Abuse].
func FromAbuse(l AbuseLookup) Enricher {
	return Func(func(ctx context.Context, addr netip.Addr, r *Result) error {
		a, err := l.LookupAbuse(ctx, addr)
		r.Merge(Result{Abuse: a})
		return err
	})
}

// Chain is an [Enricher] that runs its enrichers in order, each on the same
// [Result], so that an earlier enricher's values take precedence. It runs
// every one of them whatever the others return (a missing ASN never
// suppresses the PTR names) and joins their errors with [errors.Join]; only
// a done ctx stops it early. The joined error matches [ErrNotFound] when
// any part does; use [IgnoreNotFound] to keep only the failures. Nil
// entries are skipped. A Chain is safe for concurrent use when its
// enrichers are.
type Chain []Enricher

// Enrich runs every enricher of c on r and joins their errors.
func (c Chain) Enrich(ctx context.Context, addr netip.Addr, r *Result) error {
	var errs []error
	for _, e := range c {
		if e == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := e.Enrich(ctx, addr, r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 1 {
		// errors.Join of one error would still be a join; keep it plain
		// so that a lone not-found reads well.
		return errs[0]
	}
	return errors.Join(errs...)
}

// Lookup runs e on a fresh [Result] for addr and returns it with e's error.
// The result is worth reading even when the error is not nil.
func Lookup(ctx context.Context, e Enricher, addr netip.Addr) (Result, error) {
	r := Result{Addr: addr}
	err := e.Enrich(ctx, addr, &r)
	return r, err
}

// Merge copies into r the values of o that r does not have yet, so that
// what r already holds wins:
//
//   - Addr, Names, NAICS, Sector and Abuse are taken when r's are empty.
//   - ASN is taken whole when r has no AS number; when both name the same
//     AS, o fills r's empty fields (a name, a prefix).
//   - Geo is taken whole when r has no country; when both name the same
//     country, o fills r's empty region, city and coordinates.
//
// Merge copies o.Names, so r never shares a slice with o.
func (r *Result) Merge(o Result) {
	o.sanitize() // the provider's values enter here: see sanitize.go
	if !r.Addr.IsValid() {
		r.Addr = o.Addr
	}
	if len(r.Names) == 0 && len(o.Names) > 0 {
		r.Names = slices.Clone(o.Names)
	}
	r.ASN.merge(o.ASN)
	r.Geo.merge(o.Geo)
	if r.Abuse.Email == "" && o.Abuse.Email != "" {
		r.Abuse = o.Abuse
	}
	if r.NAICS == 0 {
		r.NAICS = o.NAICS
	}
	if r.Sector == "" {
		r.Sector = o.Sector
	}
}

func (a *ASN) merge(o ASN) {
	switch {
	case o.Number == 0:
		if *a == (ASN{}) {
			*a = o // a prefix or a name alone is still worth keeping
		}
	case a.Number == 0:
		*a = o
	case a.Number == o.Number:
		if a.Name == "" {
			a.Name = o.Name
		}
		if !a.Prefix.IsValid() {
			a.Prefix = o.Prefix
		}
		if a.Country == "" {
			a.Country = o.Country
		}
		if a.Registry == "" {
			a.Registry = o.Registry
		}
	}
}

func (g *Geo) merge(o Geo) {
	switch {
	case o.Country == "":
		if *g == (Geo{}) {
			*g = o
		}
	case g.Country == "":
		*g = o
	case g.Country == o.Country:
		if g.Region == "" {
			g.Region = o.Region
		}
		if g.City == "" {
			g.City = o.City
		}
		if !g.HasCoordinates && o.HasCoordinates {
			g.Latitude, g.Longitude, g.HasCoordinates = o.Latitude, o.Longitude, true
		}
	}
}
