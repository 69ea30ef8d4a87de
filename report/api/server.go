package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/store"
)

// Limits of the server, as Shadowserver's service has them.
const (
	// MaxQueryLimit is the most rows one reports/query call returns.
	MaxQueryLimit = 10000
	// DefaultMaxBody is the default limit on a request body.
	DefaultMaxBody = 64 << 10
	// DefaultListLimit is the default limit of reports/list (a limit of
	// 0 or less means this one too).
	DefaultListLimit = 1000
	// MaxQueryOffset bounds how far reports/query pages: (page-1)*limit.
	MaxQueryOffset = 1000000
	// MaxFacetValues bounds the values a facet counts.
	MaxFacetValues = 10000
	// QueryDays is how many days reports/query looks at without a date.
	QueryDays = 30
)

// ServerOptions configures a Server. The zero value works.
type ServerOptions struct {
	// MaxBody limits a request's body; 0 means DefaultMaxBody.
	MaxBody int64
	// Timeout bounds each call's work on the store; 0 means 45 s (the
	// clients' own timeout).
	Timeout time.Duration
	// Rate and Burst limit each key's calls (Rate per second); Rate 0
	// means 10 per second, a burst of 20.
	Rate  float64
	Burst int
	// Now returns the time (for test/ping and the default dates); nil
	// means time.Now.
	Now func() time.Time
	// Log is called once per request, after it is answered, when set.
	Log func(Access)
	// Operator signs in to the statistics pages and sees every row.
	Operator Credentials
	// SessionTTL is how long a statistics page login lasts; 0 means 12 h.
	SessionTTL time.Duration
	// SecureCookies marks the pages' login cookie Secure (HTTPS only)
	// even when the request came over plain HTTP, as behind a proxy that
	// terminates TLS.
	SecureCookies bool
	// TempDir holds downloads while they are sent; "" means os.TempDir.
	TempDir string
	// MaxInFlight bounds each key's calls at once (beyond: 429), so that
	// one key cannot hold every database connection; 0 means 8.
	MaxInFlight int
}

// Credentials are a key id and its secret.
type Credentials struct {
	ID, Secret string
}

// Access describes one answered request, for a request log.
type Access struct {
	Method, Path string
	Key          string // the API key, when the request named a known one
	Status       int
	Bytes        int64
	Duration     time.Duration
	// Err is the cause of an internal error (status 500 or 504), which
	// the client is not told.
	Err error
}

// Server serves the Reports API (API) and the downloads (Downloads) from
// a store, for the keys of a constituency file: each key reads only the
// constituencies that name it.
type Server struct {
	st         *store.Store
	cs         *store.Constituencies
	opt        ServerOptions
	keys       map[string]*apiKey
	sessionKey [32]byte // signs the pages' login cookies
	guards     guards   // failed attempts
}

type apiKey struct {
	id       string
	secret   []byte
	reports  []string // constituency names, in file order
	limiter  *rate.Limiter
	inflight chan struct{} // one token per call running
}

// failRate and failBurst bound the failed attempts (a wrong HMAC or
// secret) on a key id from one client address, known key or not: once
// spent, its requests are refused unverified (429) until the budget
// refills, so a secret is guessed at failRate a second at most, and a
// client elsewhere is not locked out. maxGuards bounds the memory of
// them.
const (
	failRate  = 1
	failBurst = 10
	maxGuards = 1 << 16
)

// guards are the failed-attempt budgets by key id and client address.
type guards struct {
	mu sync.Mutex
	m  map[[2]string]*guard
}

type guard struct {
	mu  sync.Mutex // held from the check to the verdict: parallel guesses wait their turn
	lim *rate.Limiter
}

// attempt starts an attempt on id from r's address: ok is false when
// its budget of failures is spent; otherwise done must be called with
// the verdict, and a failure spends one.
func (g *guards) attempt(id string, r *http.Request) (done func(success bool), ok bool) {
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	k := [2]string{id, addr}
	g.mu.Lock()
	if g.m == nil || len(g.m) >= maxGuards {
		g.m = map[[2]string]*guard{}
	}
	gd := g.m[k]
	if gd == nil {
		gd = &guard{lim: rate.NewLimiter(failRate, failBurst)}
		g.m[k] = gd
	}
	g.mu.Unlock()
	gd.mu.Lock()
	if gd.lim.Tokens() < 1 {
		gd.mu.Unlock()
		return nil, false
	}
	return func(success bool) {
		if !success {
			gd.lim.Allow()
		}
		gd.mu.Unlock()
	}, true
}

// ErrKeyConflict: two constituencies name the same key with different
// secrets, or the operator's key is a constituency's.
var ErrKeyConflict = errors.New("api: one key with two secrets")

// NewServer returns a server of st for the keys of cs. Constituencies
// that name the same key share it: the key reads all of them.
func NewServer(st *store.Store, cs *store.Constituencies, opt ServerOptions) (*Server, error) {
	if opt.MaxBody <= 0 {
		opt.MaxBody = DefaultMaxBody
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 45 * time.Second
	}
	if opt.Rate <= 0 {
		opt.Rate, opt.Burst = 10, 20
	}
	if opt.Burst <= 0 {
		opt.Burst = max(1, int(opt.Rate))
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.SessionTTL <= 0 {
		opt.SessionTTL = 12 * time.Hour
	}
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = 8
	}
	s := &Server{st: st, cs: cs, opt: opt, keys: map[string]*apiKey{}}
	if _, err := rand.Read(s.sessionKey[:]); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if cs == nil {
		return s, nil
	}
	for i := range cs.List {
		c := &cs.List[i]
		if c.API.ID == "" {
			continue
		}
		secret, err := c.API.SecretBytes()
		if err != nil {
			return nil, fmt.Errorf("api: constituency %s: %w", c.Name, err)
		}
		if len(secret) == 0 {
			return nil, fmt.Errorf("api: constituency %s: key %s has an empty secret", c.Name, c.API.ID)
		}
		k := s.keys[c.API.ID]
		if k == nil {
			k = &apiKey{id: c.API.ID, secret: secret, limiter: rate.NewLimiter(rate.Limit(opt.Rate), opt.Burst),
				inflight: make(chan struct{}, opt.MaxInFlight)}
			s.keys[c.API.ID] = k
		} else if !hmac.Equal(k.secret, secret) {
			return nil, fmt.Errorf("%w: %s (constituency %s)", ErrKeyConflict, c.API.ID, c.Name)
		}
		k.reports = append(k.reports, c.Name)
	}
	if id := opt.Operator.ID; id != "" {
		if s.keys[id] != nil {
			return nil, fmt.Errorf("%w: the operator's key %s is also a constituency's", ErrKeyConflict, id)
		}
		if opt.Operator.Secret == "" {
			return nil, fmt.Errorf("api: the operator's key %s has an empty secret", id)
		}
	}
	return s, nil
}

// apiError is an error answer: a status other than 200 and a message.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status, fmt.Sprintf(format, args...)}
}

// statusWriter remembers what a handler answered, for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	err    error // an internal error, for the log
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (s *Server) logged(w http.ResponseWriter, r *http.Request, f func(w http.ResponseWriter) string) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	var key string
	defer func() {
		// Also after a handler aborted the connection (a panic).
		if s.opt.Log != nil {
			s.opt.Log(Access{Method: r.Method, Path: r.URL.Path, Key: key, Status: sw.status, Bytes: sw.bytes, Duration: time.Since(start), Err: sw.err})
		}
	}()
	key = f(sw)
}

// API returns the handler of the Reports API: POST <prefix>/<method>
// (for example /api2/reports/list when mounted at /api2/; the method is
// the path's last two segments), a JSON object
// as the body holding "apikey", and the header HMAC2 holding the
// lower-case hex HMAC-SHA256 of the exact body bytes under the key's
// secret. Every error is a status other than 200 with {"error": text}.
func (s *Server) API() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.logged(w, r, func(w http.ResponseWriter) string {
			key, res, err := s.call(r)
			if err != nil {
				var ae *apiError
				if !errors.As(err, &ae) {
					w.(*statusWriter).err = err
					ae = errorf(http.StatusInternalServerError, "internal error")
					if errors.Is(err, context.DeadlineExceeded) {
						ae = errorf(http.StatusGatewayTimeout, "query timed out")
					}
				}
				writeJSON(w, ae.status, map[string]string{"error": ae.msg})
				return key
			}
			writeJSON(w, http.StatusOK, res)
			return key
		})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// call authenticates a request and runs its method.
func (s *Server) call(r *http.Request) (keyID string, res any, err error) {
	if r.Method != http.MethodPost {
		return "", nil, &apiError{http.StatusMethodNotAllowed, "API calls must be made with HTTP POST"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.opt.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", nil, errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes", s.opt.MaxBody)
		}
		return "", nil, errorf(http.StatusBadRequest, "reading the request: %v", err)
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		return "", nil, errorf(http.StatusBadRequest, "the request must be a JSON object")
	}
	var id string
	if err := json.Unmarshal(req["apikey"], &id); err != nil || id == "" {
		return "", nil, errorf(http.StatusUnauthorized, "missing apikey")
	}
	done, ok := s.guards.attempt(id, r)
	if !ok {
		return id, nil, errorf(http.StatusTooManyRequests, "too many failed attempts")
	}
	k := s.keys[id]
	secret := []byte("no such key") // the same work for an unknown key: timing does not tell which exist
	if k != nil {
		secret = k.secret
	}
	sum, herr := hex.DecodeString(r.Header.Get("HMAC2"))
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	valid := hmac.Equal(m.Sum(nil), sum) && herr == nil && k != nil
	done(valid)
	if !valid {
		return "", nil, errorf(http.StatusUnauthorized, "access denied: unknown key or bad HMAC2")
	}
	if !k.limiter.Allow() {
		return id, nil, errorf(http.StatusTooManyRequests, "rate limit exceeded")
	}
	select {
	case k.inflight <- struct{}{}:
		defer func() { <-k.inflight }()
	default:
		return id, nil, errorf(http.StatusTooManyRequests, "too many calls at once for this key")
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.Timeout)
	defer cancel()
	// Every method is two path segments, after wherever the handler is
	// mounted.
	method := strings.Trim(r.URL.Path, "/")
	if i := strings.LastIndexByte(method, '/'); i >= 0 {
		if j := strings.LastIndexByte(method[:i], '/'); j >= 0 {
			method = method[j+1:]
		}
	}
	h, ok := methods[method]
	if !ok {
		return id, nil, errorf(http.StatusNotFound, "no such method: %q", method)
	}
	res, err = h(ctx, s, k, req)
	return id, res, err
}

type handler func(ctx context.Context, s *Server, k *apiKey, req map[string]json.RawMessage) (any, error)

var methods = map[string]handler{
	"test/ping":          ping,
	"key/info":           keyInfo,
	"reports/subscribed": subscribed,
	"reports/types":      types,
	"reports/list":       list,
	"reports/query":      query,
	"reports/stats":      stats,
	"reports/schema":     schema,
}

func ping(_ context.Context, s *Server, _ *apiKey, _ map[string]json.RawMessage) (any, error) {
	return map[string]string{"pong": s.opt.Now().UTC().Format(time.DateTime)}, nil
}

// KeyInfo is what key/info says of a key.
type KeyInfo struct {
	Key     string   `json:"key"`
	Reports []string `json:"reports"`
	Types   []string `json:"types"`
}

func keyInfo(_ context.Context, _ *Server, k *apiKey, _ map[string]json.RawMessage) (any, error) {
	return []KeyInfo{{Key: k.id, Reports: k.reports, Types: typeNames(allTypes)}}, nil
}

func subscribed(_ context.Context, _ *Server, k *apiKey, _ map[string]json.RawMessage) (any, error) {
	return k.reports, nil
}

var allTypes = []report.Type{report.ScanNTP, report.Scan6NTP, report.ScanNTPMonitor, report.Scan6NTPMonitor}

func typeNames(ts []report.Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// TypeInfo is a report type as reports/types describes it with detail.
type TypeInfo struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

// typeInfo names a report type and its Shadowserver page.
func typeInfo(t report.Type) TypeInfo {
	if t.IsMonitor() {
		return TypeInfo{string(t), "NTP Monitor", "https://www.shadowserver.org/what-we-do/network-reporting/ntp-monitor-report/"}
	}
	return TypeInfo{string(t), "NTP Version", "https://www.shadowserver.org/what-we-do/network-reporting/ntp-version-report/"}
}

func types(ctx context.Context, s *Server, k *apiKey, req map[string]json.RawMessage) (any, error) {
	from, until, err := s.dates(req, true)
	if err != nil {
		return nil, err
	}
	var detail bool
	if err := optional(req, "detail", &detail); err != nil {
		return nil, err
	}
	files, err := s.files(ctx, k, k.reports, from, until, allTypes, false, 0)
	if err != nil {
		return nil, err
	}
	var seen []report.Type
	for _, f := range files {
		if !slices.Contains(seen, f.Type) {
			seen = append(seen, f.Type)
		}
	}
	slices.Sort(seen)
	if !detail {
		return typeNames(seen), nil
	}
	out := []TypeInfo{}
	for _, t := range seen {
		out = append(out, typeInfo(t))
	}
	return out, nil
}

// Entry is one file in the answer of reports/list.
type Entry struct {
	Report    string `json:"report"`
	File      string `json:"file"`
	Type      string `json:"type"`
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	URL       string `json:"url"`
}

func list(ctx context.Context, s *Server, k *apiKey, req map[string]json.RawMessage) (any, error) {
	from, until, reports, ts, err := s.selection(k, req)
	if err != nil {
		return nil, err
	}
	limit := DefaultListLimit
	if err := optional(req, "limit", &limit); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	files, err := s.files(ctx, k, reports, from, until, ts, true, limit)
	if err != nil {
		return nil, err
	}
	out := []Entry{}
	for _, f := range files {
		out = append(out, Entry{Report: f.Constituency, File: f.Name, Type: string(f.Type), ID: f.Token, Timestamp: f.Day, URL: typeInfo(f.Type).URL})
	}
	return out, nil
}

// selection reads the days, reports and types a request selects.
func (s *Server) selection(k *apiKey, req map[string]json.RawMessage) (from, until string, reports []string, ts []report.Type, err error) {
	if from, until, err = s.dates(req, false); err != nil {
		return
	}
	if reports, err = s.reportsOf(k, req); err != nil {
		return
	}
	ts, err = typesOf(req)
	return
}

// dayReports returns the runs of the days from to until, and which run
// holds each day's report of each type: the day's last run of that type
// (as store.RunOf has it), by [day, type].
func (s *Server) dayReports(ctx context.Context, from, until string) ([]store.Run, map[[2]string]store.Run, error) {
	runs, err := s.st.RunsBetween(ctx, from, until)
	if err != nil {
		return nil, nil, err
	}
	last := map[[2]string]store.Run{}
	for _, r := range runs {
		for _, t := range r.Types {
			last[[2]string{r.Day(), string(t)}] = r
		}
	}
	return runs, last, nil
}

// files returns the non-empty reports of the constituencies in the days
// from to until, by day, report and type; publish gives each its token.
func (s *Server) files(ctx context.Context, k *apiKey, reports []string, from, until string, ts []report.Type, publish bool, limit int) ([]store.File, error) {
	runs, last, err := s.dayReports(ctx, from, until)
	if err != nil {
		return nil, err
	}
	var out []store.File
	for _, r := range runs {
		for _, c := range reports {
			counts, err := s.st.RowCounts(ctx, r.ID, c)
			if err != nil {
				return nil, err
			}
			for _, t := range ts {
				if last[[2]string{r.Day(), string(t)}].ID != r.ID || counts[t] == 0 {
					continue
				}
				f := store.File{RunID: r.ID, Day: r.Day(), Type: t, Constituency: c}
				if publish {
					con, _ := s.cs.ByName(c)
					delta := con.DeltaOn(r.Started.UTC())
					if f, err = s.st.Publish(ctx, r.ID, t, c, delta, FileName(r.Started, t, con)); err != nil {
						return nil, err
					}
					if !f.Revoked.IsZero() {
						continue
					}
				}
				out = append(out, f)
				if len(out) == limit {
					return out, nil
				}
			}
		}
	}
	return out, nil
}

// FileName is the name of a constituency's report of type t on the day
// of date: YYYY-MM-DD-<type>-<name>-<filter>.csv, where the filter says
// what the constituency is made of (asn, geo, ip, or several joined by
// '_'): two tokens after the type, as AbuseIO's parser needs.
func FileName(date time.Time, t report.Type, c *store.Constituency) string {
	var kinds []string
	if len(c.ASNs) > 0 {
		kinds = append(kinds, "asn")
	}
	if len(c.Countries) > 0 {
		kinds = append(kinds, "geo")
	}
	if len(c.Prefixes) > 0 {
		kinds = append(kinds, "ip")
	}
	if len(kinds) == 0 {
		kinds = []string{"all"}
	}
	return report.FileName(date, t, c.Name+"-"+strings.Join(kinds, "_"))
}

// reportsOf returns the constituencies a request names ("reports", a
// list, or "report", a name or a list), those the key may read; all of
// the key's when it names none.
func (s *Server) reportsOf(k *apiKey, req map[string]json.RawMessage) ([]string, error) {
	var names []string
	for _, field := range []string{"reports", "report"} {
		v, ok := req[field]
		if !ok || string(v) == "null" {
			continue
		}
		ns, err := stringOrList(v)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "%s: %v", field, err)
		}
		names = append(names, ns...)
	}
	if len(names) == 0 {
		return k.reports, nil
	}
	var out []string
	for _, n := range names {
		if !slices.Contains(k.reports, n) {
			return nil, errorf(http.StatusForbidden, "report %q is not subscribed by this key", n)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// typesOf returns the report types a request names ("type" or "types",
// a name or a list of them); all when it names none.
func typesOf(req map[string]json.RawMessage) ([]report.Type, error) {
	var out []report.Type
	for _, field := range []string{"type", "types"} {
		v, ok := req[field]
		if !ok || string(v) == "null" {
			continue
		}
		ns, err := stringOrList(v)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "%s: %v", field, err)
		}
		for _, n := range ns {
			t := report.Type(n)
			if !t.Known() {
				return nil, errorf(http.StatusBadRequest, "unknown report type %q", n)
			}
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	if len(out) == 0 {
		return allTypes, nil
	}
	return out, nil
}

func stringOrList(v json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(v, &many); err != nil {
		return nil, errors.New("want a string or a list of strings")
	}
	return many, nil
}

// optional decodes req[field] into v when it is there.
func optional(req map[string]json.RawMessage, field string, v any) error {
	raw, ok := req[field]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		// Some clients send numbers as strings ("page": "1").
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if p, ok := v.(*int); ok {
				if n, err := strconv.Atoi(s); err == nil {
					*p = n
					return nil
				}
			}
		}
		return errorf(http.StatusBadRequest, "%s: %v", field, err)
	}
	return nil
}

// dates reads "date": YYYY-MM-DD, YYYY-MM-DD:YYYY-MM-DD, or "now"; by
// default yesterday and today (UTC), or every day when all is set.
func (s *Server) dates(req map[string]json.RawMessage, all bool) (from, until string, err error) {
	var d string
	if err := optional(req, "date", &d); err != nil {
		return "", "", err
	}
	now := s.opt.Now().UTC()
	switch {
	case d == "" && all:
		return "", "9999-12-31", nil
	case d == "":
		return now.AddDate(0, 0, -1).Format(time.DateOnly), now.Format(time.DateOnly), nil
	case d == "now":
		return now.Format(time.DateOnly), now.Format(time.DateOnly), nil
	}
	from, until, ok := strings.Cut(d, ":")
	if !ok {
		until = from
	}
	for _, x := range []string{from, until} {
		if _, err := time.Parse(time.DateOnly, x); err != nil {
			return "", "", errorf(http.StatusBadRequest, "date: want YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD, not %q", d)
		}
	}
	if from > until {
		return "", "", errorf(http.StatusBadRequest, "date: %s is after %s", from, until)
	}
	return from, until, nil
}

func query(ctx context.Context, s *Server, k *apiKey, req map[string]json.RawMessage) (any, error) {
	var q map[string]json.RawMessage
	if err := optional(req, "query", &q); err != nil {
		return nil, err
	}
	from, until, err := s.dates(req, true)
	if err != nil {
		return nil, err
	}
	if _, ok := req["date"]; !ok {
		// By default the last QueryDays days, not all history.
		now := s.opt.Now().UTC()
		from, until = now.AddDate(0, 0, -QueryDays+1).Format(time.DateOnly), now.Format(time.DateOnly)
	}
	if v, ok := q["date"]; ok {
		r := map[string]json.RawMessage{"date": v}
		if from, until, err = s.dates(r, true); err != nil {
			return nil, err
		}
	}
	rf := store.RowFilter{From: from, Until: until, Constituencies: k.reports}
	// The other attributes are compared with the rows' columns.
	cols := map[string]string{}
	matched := false
	for name, raw := range q {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			var n json.Number
			if err := json.Unmarshal(raw, &n); err != nil {
				return nil, errorf(http.StatusBadRequest, "query.%s: want a string or a number", name)
			}
			v = n.String()
		}
		switch name {
		case "date":
			continue
		case "ip":
			p, err := netip.ParsePrefix(v)
			if err != nil {
				a, aerr := netip.ParseAddr(v)
				if aerr != nil {
					return nil, errorf(http.StatusBadRequest, "query.ip: %q is no address or prefix", v)
				}
				p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
			rf.Prefix = p
		case "asn":
			n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(v), "AS"), 10, 32)
			if err != nil || n == 0 {
				return nil, errorf(http.StatusBadRequest, "query.asn: %q is no AS number", v)
			}
			rf.ASN = uint32(n)
		case "geo":
			if len(v) != 2 {
				return nil, errorf(http.StatusBadRequest, "query.geo: %q is no country code", v)
			}
			rf.Country = strings.ToUpper(v)
		case "type":
			t := report.Type(v)
			if !t.Known() {
				return nil, errorf(http.StatusBadRequest, "query.type: unknown report type %q", v)
			}
			rf.Types = []report.Type{t}
		default:
			if !isColumn(name) {
				return nil, errorf(http.StatusBadRequest, "query.%s: no such attribute", name)
			}
			cols[name] = v
			matched = true
			continue
		}
		matched = true
	}
	if !matched {
		return nil, errorf(http.StatusBadRequest, "No supported report filters found")
	}
	var sortOrder, facet string
	if err := optional(req, "sort", &sortOrder); err != nil {
		return nil, err
	}
	switch sortOrder {
	case "", "ascending":
	case "descending":
		rf.Descending = true
	default:
		return nil, errorf(http.StatusBadRequest, "sort: want ascending or descending")
	}
	if err := optional(req, "facet", &facet); err != nil {
		return nil, err
	}
	if facet != "" && !isColumn(facet) {
		return nil, errorf(http.StatusBadRequest, "facet: no such column %q", facet)
	}
	limit, page := MaxQueryLimit, 1
	if err := optional(req, "limit", &limit); err != nil {
		return nil, err
	}
	if err := optional(req, "page", &page); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxQueryLimit {
		limit = MaxQueryLimit
	}
	if page < 1 || page-1 > MaxQueryOffset/limit {
		return nil, errorf(http.StatusBadRequest, "page: want 1 to %d for a limit of %d", MaxQueryOffset/limit+1, limit)
	}
	// The rows of each day's report, as reports/list has them.
	_, last, err := s.dayReports(ctx, from, until)
	if err != nil {
		return nil, err
	}
	for k, r := range last {
		rf.Reports = append(rf.Reports, store.RunType{RunID: r.ID, Type: report.Type(k[1])})
	}
	if len(rf.Reports) == 0 {
		return []map[string]string{}, nil
	}
	skip := (page - 1) * limit
	rows := []map[string]string{}
	facets := map[string]int{}
	var parse lineParser
	stop := errors.New("enough")
	err = s.st.RowsWhere(ctx, rf, func(rec store.Record) error {
		obj, err := parse.object(rec.Type, rec.Line)
		if err != nil {
			return err
		}
		for c, v := range cols {
			if obj[c] != v {
				return nil
			}
		}
		if facet != "" {
			if _, ok := facets[obj[facet]]; !ok && len(facets) == MaxFacetValues {
				return errorf(http.StatusBadRequest, "facet %s: more than %d values; narrow the query", facet, MaxFacetValues)
			}
			facets[obj[facet]]++
			return nil
		}
		if skip > 0 {
			skip--
			return nil
		}
		rows = append(rows, obj)
		if len(rows) == limit {
			return stop
		}
		return nil
	})
	if err != nil && err != stop {
		return nil, err
	}
	if facet != "" {
		return facets, nil
	}
	return rows, nil
}

// isColumn reports whether name is a column of either report.
func isColumn(name string) bool {
	return slices.Contains(report.VersionColumns(report.LayoutCurrent), name) ||
		slices.Contains(report.MonitorColumns(report.LayoutCurrent), name)
}

// lineParser turns a stored CSV record into an object of its columns.
type lineParser struct{}

func (lineParser) object(t report.Type, line string) (map[string]string, error) {
	cols := report.VersionColumns(report.LayoutCurrent)
	if t.IsMonitor() {
		cols = report.MonitorColumns(report.LayoutCurrent)
	}
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = len(cols)
	rec, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("api: stored row: %w", err)
	}
	obj := make(map[string]string, len(cols)+1)
	for i, c := range cols {
		obj[c] = rec[i]
	}
	obj["type"] = string(t)
	return obj, nil
}

func stats(ctx context.Context, s *Server, k *apiKey, req map[string]json.RawMessage) (any, error) {
	from, until, reports, ts, err := s.selection(k, req)
	if err != nil {
		return nil, err
	}
	files, err := s.files(ctx, k, reports, from, until, ts, false, 0)
	if err != nil {
		return nil, err
	}
	table := [][]any{{"date", "report", "type", "total"}}
	for _, f := range files {
		counts, err := s.st.RowCounts(ctx, f.RunID, f.Constituency)
		if err != nil {
			return nil, err
		}
		table = append(table, []any{f.Day, f.Constituency, string(f.Type), counts[f.Type]})
	}
	return table, nil
}

func schema(_ context.Context, _ *Server, _ *apiKey, req map[string]json.RawMessage) (any, error) {
	var t string
	if err := optional(req, "type", &t); err != nil {
		return nil, err
	}
	rt := report.Type(t)
	if !rt.Known() {
		return nil, errorf(http.StatusBadRequest, "type: unknown report type %q", t)
	}
	return Schema(rt), nil
}

// Schema returns the JSON schema of a report type's rows as
// reports/query returns them: an object of the CSV's columns (strings,
// "" for none) and the row's type.
func Schema(t report.Type) map[string]any {
	cols := report.VersionColumns(report.LayoutCurrent)
	if t.IsMonitor() {
		cols = report.MonitorColumns(report.LayoutCurrent)
	}
	props := map[string]any{"type": map[string]any{"const": string(t)}}
	for _, c := range cols {
		props[c] = map[string]any{"type": "string"}
	}
	info := typeInfo(t)
	return map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                info.Title + " (" + string(t) + ")",
		"description":          info.URL,
		"type":                 "object",
		"properties":           props,
		"required":             append(slices.Clone(cols), "type"),
		"additionalProperties": false,
	}
}

// Downloads returns the handler of the downloads: GET <prefix>/<id>
// answers the file's CSV, named in Content-Disposition as IntelMQ reads
// it (unquoted, nothing after it). The id is the only credential.
func (s *Server) Downloads() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.logged(w, r, func(w http.ResponseWriter) string {
			s.download(w, r)
			return ""
		})
	})
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	token := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	// The store's work is bounded by Timeout; sending the file is bounded
	// by the HTTP server's write timeout only (a large file to a slow
	// client takes what it takes).
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.Timeout)
	defer cancel()
	f, err := s.st.FileByToken(ctx, token)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			http.Error(w, "not found", http.StatusNotFound)
		} else {
			w.(*statusWriter).err = err
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
		return
	}
	// The report is written to a temporary file first, so that a slow
	// client holds no database connection, and an error is an error
	// rather than a short file.
	tmp, err := os.CreateTemp(s.opt.TempDir, "ntpctl-dl-")
	if err != nil {
		w.(*statusWriter).err = err
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := s.st.WriteReport(ctx, tmp, store.ReportQuery{RunID: f.RunID, Type: f.Type, Constituency: f.Constituency, Delta: f.Delta}); err != nil {
		w.(*statusWriter).err = err
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	cancel()
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", "attachment; filename="+f.Name)
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// ServeContent answers HEAD and ranges (a resumed download) too.
	http.ServeContent(w, r, "", f.Created, tmp)
}
