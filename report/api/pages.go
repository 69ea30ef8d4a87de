package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/store"
)

//go:embed pages.html
var pagesFS embed.FS

var pageTmpl = template.Must(template.New("pages.html").Funcs(template.FuncMap{
	"bars": barsSVG,
	"line": lineSVG,
}).ParseFS(pagesFS, "pages.html"))

// sessionCookie is the statistics pages' login cookie.
const sessionCookie = "ntpctl_session"

// Pages returns the handler of the statistics pages, to be mounted at a
// path of its own ("/stats/", say): a login form for a key (its id and
// secret), then for each report type the latest day (rows, the top
// countries, ASes and daemon versions, the amplification distribution)
// and the time series (rows by day, new and fixed per day), per
// constituency of the key; the operator's key (ServerOptions.Operator)
// sees every row. Server-rendered HTML with inline SVG charts: no
// script, no external resource.
func (s *Server) Pages() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.logged(w, r, func(w http.ResponseWriter) string {
			return s.page(w, r)
		})
	})
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) string {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "private, no-store")
	switch last := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]; last {
	case "login":
		return s.login(w, r)
	case "logout":
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return ""
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: mount(r), MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "login", http.StatusSeeOther)
		return ""
	case "":
	default:
		http.NotFound(w, r)
		return ""
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return ""
	}
	id, ok := s.session(r)
	if !ok {
		http.Redirect(w, r, "login", http.StatusSeeOther)
		return ""
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.Timeout)
	defer cancel()
	data, err := s.pageData(ctx, id, r.URL.Query().Get("c"))
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			http.Error(w, ae.msg, ae.status)
		} else {
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
		return id
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.ExecuteTemplate(w, "stats", data); err != nil {
		panic(http.ErrAbortHandler)
	}
	return id
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) string {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		pageTmpl.ExecuteTemplate(w, "login", nil)
		return ""
	case http.MethodPost:
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return ""
	}
	// A login posted from another site is refused.
	if o := r.Header.Get("Origin"); o != "" && o != "null" && !sameOrigin(o, r) {
		http.Error(w, "cross-origin login refused", http.StatusForbidden)
		return ""
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return ""
	}
	id, secret := r.PostForm.Get("key"), r.PostForm.Get("secret")
	done, allowed := s.guards.attempt(id, r)
	if !allowed {
		http.Error(w, "too many failed attempts", http.StatusTooManyRequests)
		return ""
	}
	k := s.keys[id]
	isOp := s.opt.Operator.ID != "" && id == s.opt.Operator.ID
	ok := isOp && hmac.Equal([]byte(secret), []byte(s.opt.Operator.Secret)) || !isOp && k != nil && hmac.Equal([]byte(secret), k.secret)
	done(ok)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		pageTmpl.ExecuteTemplate(w, "login", map[string]string{"Error": "Unknown key or wrong secret."})
		return ""
	}
	exp := s.opt.Now().Add(s.opt.SessionTTL).Unix()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.sessionValue(id, exp), Path: mount(r), MaxAge: int(s.opt.SessionTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil || s.opt.SecureCookies, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "./", http.StatusSeeOther)
	return id
}

// mount is the path the pages are served under ("/stats/"), which the
// login cookie is limited to.
func mount(r *http.Request) string { return r.URL.Path[:strings.LastIndexByte(r.URL.Path, '/')+1] }

func sameOrigin(origin string, r *http.Request) bool {
	o := strings.TrimPrefix(strings.TrimPrefix(origin, "https://"), "http://")
	return o == r.Host
}

// sessionValue is a signed "key id, expiry" pair. The signature also
// covers the key's secret: a new secret ends the key's sessions.
func (s *Server) sessionValue(id string, exp int64) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(id)) + "." + strconv.FormatInt(exp, 10)
	return payload + "." + s.sessionMAC(payload, id)
}

func (s *Server) sessionMAC(payload, id string) string {
	m := hmac.New(sha256.New, s.sessionKey[:])
	m.Write([]byte(payload))
	m.Write([]byte{0})
	if k := s.keys[id]; k != nil {
		m.Write(k.secret)
	} else {
		m.Write([]byte(s.opt.Operator.Secret))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// session returns the key id of a request's valid session cookie.
func (s *Server) session(r *http.Request) (string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 {
		return "", false
	}
	payload, sig := c.Value[:i], c.Value[i+1:]
	enc, expS, ok := strings.Cut(payload, ".")
	id, err := base64.RawURLEncoding.DecodeString(enc)
	if !ok || err != nil {
		return "", false
	}
	if !hmac.Equal([]byte(sig), []byte(s.sessionMAC(payload, string(id)))) {
		return "", false
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil || s.opt.Now().Unix() > exp {
		return "", false
	}
	if s.keys[string(id)] == nil && (s.opt.Operator.ID == "" || string(id) != s.opt.Operator.ID) {
		return "", false // a key no longer configured
	}
	return string(id), true
}

// pageData is what the statistics page shows.
type pageData struct {
	Key            string
	Operator       bool
	Constituencies []string // the key's; every one for the operator
	Selected       string   // "" for every row
	Types          []typePage
	NewFixed       []seriesPoint
}

type typePage struct {
	Type   report.Type
	Title  string
	Day    string
	RunID  int64
	Rows   int64
	Stats  store.RunStats
	Series []seriesPoint
}

type seriesPoint struct {
	Day        string
	Rows       int64
	New, Fixed int64
}

func (s *Server) pageData(ctx context.Context, id, selected string) (pageData, error) {
	d := pageData{Key: id}
	if k := s.keys[id]; k != nil && id != s.opt.Operator.ID {
		d.Constituencies = k.reports
		if selected == "" {
			selected = k.reports[0]
		}
		if !slices.Contains(k.reports, selected) {
			return d, errorf(http.StatusForbidden, "constituency %q is not this key's", selected)
		}
	} else {
		d.Operator = true
		if s.cs != nil {
			for _, c := range s.cs.List {
				d.Constituencies = append(d.Constituencies, c.Name)
			}
		}
		if selected != "" {
			if s.cs == nil {
				return d, errorf(http.StatusNotFound, "no constituency %q", selected)
			}
			c, ok := s.cs.ByName(selected)
			if !ok {
				return d, errorf(http.StatusNotFound, "no constituency %q", selected)
			}
			selected = c.Name
		}
	}
	d.Selected = selected
	points, err := s.st.Series(ctx, selected, "", "")
	if err != nil {
		return d, err
	}
	for _, p := range points {
		d.NewFixed = append(d.NewFixed, seriesPoint{Day: p.Day, New: p.New, Fixed: p.Fixed})
	}
	for _, t := range allTypes {
		tp := typePage{Type: t, Title: typeInfo(t).Title}
		for _, p := range points {
			var n int64
			for _, c := range p.Rows {
				if c.Key == string(t) {
					n = c.Count
				}
			}
			tp.Series = append(tp.Series, seriesPoint{Day: p.Day, Rows: n})
			if n > 0 {
				tp.Day, tp.RunID, tp.Rows = p.Day, p.RunID, n
			}
		}
		if tp.RunID == 0 {
			continue // no rows of this type, ever
		}
		if tp.Stats, err = s.st.TypeStats(ctx, tp.RunID, t, selected); err != nil {
			return d, err
		}
		tp.Stats.Countries = top(tp.Stats.Countries, 10)
		tp.Stats.ASNs = top(tp.Stats.ASNs, 10)
		tp.Stats.Daemons = top(tp.Stats.Daemons, 10)
		d.Types = append(d.Types, tp)
	}
	return d, nil
}

func top(cs []store.Count, n int) []store.Count { return cs[:min(n, len(cs))] }

// barsSVG draws counts as horizontal bars with their labels and values.
func barsSVG(cs []store.Count, name string) template.HTML {
	const w, row = 480, 20
	var max int64 = 1
	for _, c := range cs {
		max = maxOf(max, c.Count)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="bars" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg">`,
		template.HTMLEscapeString(name), w, row*len(cs)+2, w, row*len(cs)+2)
	for i, c := range cs {
		y := i * row
		bw := int(float64(c.Count) / float64(max) * 260)
		fmt.Fprintf(&b, `<text x="0" y="%d" font-size="12">%s</text><rect x="170" y="%d" width="%d" height="14" fill="#36c"/><text x="%d" y="%d" font-size="12">%d</text>`,
			y+13, template.HTMLEscapeString(shorten(c.Key, 26)), y+2, max1(bw), 176+bw, y+13, c.Count)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// lineSVG draws a series: rows by day as a line, or new and fixed per
// day as pairs of bars.
func lineSVG(ps []seriesPoint, newFixed bool) template.HTML {
	const w, h, pad = 560, 160, 30
	var max int64 = 1
	for _, p := range ps {
		max = maxOf(max, maxOf(p.Rows, maxOf(p.New, p.Fixed)))
	}
	n := max1(len(ps))
	step := float64(w-2*pad) / float64(n)
	y := func(v int64) float64 { return float64(h-pad) - float64(v)/float64(max)*float64(h-2*pad) }
	var b strings.Builder
	label := "findings by day"
	if newFixed {
		label = "new and fixed per day"
	}
	fmt.Fprintf(&b, `<svg class="series" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg">`, label, w, h, w, h)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/><text x="0" y="%d" font-size="11">%d</text>`, pad, h-pad, w-pad, h-pad, pad, max)
	var line []string
	for i, p := range ps {
		x := float64(pad) + step*(float64(i)+0.5)
		if newFixed {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#c33"><title>%s new %d</title></rect>`,
				x-step/4, y(p.New), step/4, float64(h-pad)-y(p.New), template.HTMLEscapeString(p.Day), p.New)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#3a3"><title>%s fixed %d</title></rect>`,
				x, y(p.Fixed), step/4, float64(h-pad)-y(p.Fixed), template.HTMLEscapeString(p.Day), p.Fixed)
		} else {
			line = append(line, fmt.Sprintf("%.1f,%.1f", x, y(p.Rows)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#36c"><title>%s %d</title></circle>`, x, y(p.Rows), template.HTMLEscapeString(p.Day), p.Rows)
		}
		if len(ps) <= 14 || i%(len(ps)/7+1) == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>`, x, h-pad+14, template.HTMLEscapeString(shortDay(p.Day)))
		}
	}
	if len(line) > 0 {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#36c" stroke-width="2" points="%s"/>`, strings.Join(line, " "))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func maxOf(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func max1(n int) int { return max(n, 1) }

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func shortDay(d string) string {
	if len(d) == 10 {
		return d[5:]
	}
	return d
}
