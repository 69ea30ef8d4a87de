package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/api"
	"github.com/ntpctl/ntpctl/report/store"
)

// serveConfig is reportd serve's configuration file (YAML).
type serveConfig struct {
	// Listen is the address to listen on; 127.0.0.1:8080 by default.
	Listen string `yaml:"listen"`
	// DB is the store's DSN; Constituencies the constituency file (its
	// api entries are the keys).
	DB             string `yaml:"db"`
	Constituencies string `yaml:"constituencies"`
	// TLS serves HTTPS from these files; without it, plain HTTP (behind a
	// proxy that terminates TLS: the API's HMAC does not protect against
	// replay, TLS must).
	TLS struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	// SecureCookies marks the pages' login cookie HTTPS-only behind a
	// proxy that terminates TLS (with tls set it always is).
	SecureCookies bool `yaml:"secure_cookies"`
	// APIPath, DownloadPath and StatsPath are where the API, the
	// downloads and the statistics pages are served: /api2/, /dl/ and
	// /stats/ by default.
	APIPath      string `yaml:"api_path"`
	DownloadPath string `yaml:"download_path"`
	StatsPath    string `yaml:"stats_path"`
	// Operator signs in to the statistics pages and sees every row.
	Operator struct {
		Key        string `yaml:"key"`
		Secret     string `yaml:"secret"`
		SecretFile string `yaml:"secret_file"`
	} `yaml:"operator"`
	Limits struct {
		Rate    float64 `yaml:"rate"`     // calls per second per key (10)
		Burst   int     `yaml:"burst"`    // (20)
		MaxBody int64   `yaml:"max_body"` // bytes (65536)
		// InFlight bounds each key's calls at once (8).
		InFlight int           `yaml:"in_flight"`
		Timeout  time.Duration `yaml:"timeout"` // per call (45s)
	} `yaml:"limits"`
}

func loadServeConfig(path string) (serveConfig, error) {
	var c serveConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	// Relative paths are relative to the configuration file.
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.Constituencies, &c.TLS.Cert, &c.TLS.Key, &c.Operator.SecretFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if c.DB != "" && !strings.Contains(c.DB, ":") && !filepath.IsAbs(c.DB) {
		c.DB = filepath.Join(dir, c.DB)
	}
	return c, nil
}

func (c *serveConfig) defaults() error {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.APIPath == "" {
		c.APIPath = "/api2/"
	}
	if c.DownloadPath == "" {
		c.DownloadPath = "/dl/"
	}
	if c.StatsPath == "" {
		c.StatsPath = "/stats/"
	}
	for _, p := range []*string{&c.APIPath, &c.DownloadPath, &c.StatsPath} {
		if !strings.HasPrefix(*p, "/") || !strings.HasSuffix(*p, "/") {
			return fmt.Errorf("serve: paths start and end with /: %q", *p)
		}
	}
	if c.APIPath == c.DownloadPath || c.APIPath == c.StatsPath || c.DownloadPath == c.StatsPath {
		return errors.New("serve: api_path, download_path and stats_path must differ")
	}
	if c.Operator.SecretFile != "" {
		b, err := os.ReadFile(c.Operator.SecretFile)
		if err != nil {
			return err
		}
		c.Operator.Secret = strings.TrimSpace(string(b))
	}
	if c.DB == "" || c.Constituencies == "" {
		return errors.New("serve: the configuration names no db or no constituencies")
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("serve: tls needs both cert and key")
	}
	return nil
}

// serveCmd is reportd serve: with -config, the service it describes;
// with no arguments, a store filled from the lab and a key to try it.
func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reportd serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML); without it, a lab store on 127.0.0.1")
	listen := fs.String("listen", "", "address to listen on (overrides the configuration's)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	var cfg serveConfig
	if *cfgPath != "" {
		var err error
		if cfg, err = loadServeConfig(*cfgPath); err != nil {
			return err
		}
	} else {
		root, key, secret, err := labStore(ctx)
		if err != nil {
			return err
		}
		cfg.DB, cfg.Constituencies = filepath.Join(root, "store.db"), filepath.Join(root, "constituencies.yaml")
		cfg.Listen = "127.0.0.1:0"
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return err
		}
		cfg.Operator.Key, cfg.Operator.Secret = "operator", hex.EncodeToString(raw[:])
		defer fmt.Fprintf(stdout, "the lab store stays in %s\n", root)
		fmt.Fprintf(stdout, "reportd serve: the lab's week in %s\nlab key: %s\nlab secret: %s\noperator key: %s\noperator secret: %s\n",
			root, key, secret, cfg.Operator.Key, cfg.Operator.Secret)
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if err := cfg.defaults(); err != nil {
		return usageError{err}
	}
	st, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	cs, err := store.LoadConstituencies(cfg.Constituencies)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	srv, err := api.NewServer(st, cs, api.ServerOptions{
		Rate: cfg.Limits.Rate, Burst: cfg.Limits.Burst, MaxBody: cfg.Limits.MaxBody, Timeout: cfg.Limits.Timeout,
		Operator: api.Credentials{ID: cfg.Operator.Key, Secret: cfg.Operator.Secret}, SecureCookies: cfg.SecureCookies, MaxInFlight: cfg.Limits.InFlight,
		Log: func(a api.Access) {
			attrs := []any{"method", a.Method, "path", logPath(a.Path, cfg.DownloadPath), "key", a.Key,
				"status", a.Status, "bytes", a.Bytes, "ms", a.Duration.Milliseconds()}
			if a.Err != nil {
				logger.Error("request", append(attrs, "err", a.Err)...)
				return
			}
			logger.Info("request", attrs...)
		},
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(cfg.APIPath, srv.API())
	mux.Handle(cfg.DownloadPath, srv.Downloads())
	mux.Handle(cfg.StatsPath, srv.Pages())
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: 10 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	scheme := "http"
	if cfg.TLS.Cert != "" {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	fmt.Fprintf(stdout, "statistics pages at %s%s\n", base, cfg.StatsPath)
	fmt.Fprintf(stdout, "serving the Reports API at %s%s and downloads at %s%s\n", base, cfg.APIPath, base, cfg.DownloadPath)
	if *cfgPath == "" {
		fmt.Fprintf(stdout, "try: reportd pull -db /tmp/pulled.db -api %s%s -dl %s%s -key KEY -secret SECRET -date 2026-11-01:2026-11-07\n",
			base, cfg.APIPath, base, cfg.DownloadPath)
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.TLS.Cert != "" {
			errc <- hs.ServeTLS(ln, cfg.TLS.Cert, cfg.TLS.Key)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Graceful: the calls in flight finish (for up to 30 s).
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "reportd serve: stopped")
	return nil
}

// logPath keeps download tokens out of the request log (they are
// credentials): a short hash of each tells requests of one file apart.
func logPath(path, dl string) string {
	if strings.HasPrefix(path, dl) && len(path) > len(dl) {
		sum := sha256.Sum256([]byte(path[len(dl):]))
		return dl + "sha256:" + hex.EncodeToString(sum[:6])
	}
	return path
}

// labStore fills a temporary store with the lab's week and writes a
// constituency file whose constituencies share one new key.
func labStore(ctx context.Context) (root, key, secret string, err error) {
	root, err = os.MkdirTemp("", "reportd-serve-")
	if err != nil {
		return "", "", "", err
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", "", err
	}
	key, secret = "lab", hex.EncodeToString(raw[:])
	cs := strings.ReplaceAll(labConstituencies, "    contacts:", "    api: {key: "+key+", secret: "+secret+"}\n    contacts:")
	csPath := filepath.Join(root, "constituencies.yaml")
	if err := os.WriteFile(csPath, []byte(cs), 0o600); err != nil {
		return "", "", "", err
	}
	args := []string{"import", "-db", filepath.Join(root, "store.db"), "-constituencies", csPath}
	for day := 1; day <= 7; day++ {
		dir, err := writeLabDay(root, day)
		if err != nil {
			return "", "", "", err
		}
		args = append(args, dir)
	}
	if err := run(ctx, args, io.Discard, io.Discard); err != nil {
		return "", "", "", err
	}
	return root, key, secret, nil
}

// pullCmd is reportd pull: what Shadowserver's report-manager.py does,
// into a store. Each listed file is downloaded and imported as a run of
// its own (importing the same file twice changes nothing).
func pullCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reportd pull", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("db", "", "the store to import into")
	apiURL := fs.String("api", api.ShadowserverAPI, "the Reports API's base URL")
	dlURL := fs.String("dl", api.ShadowserverDownloads, "the downloads' base URL")
	key := fs.String("key", "", "API key")
	secret := fs.String("secret", "", "API secret (or -secret-file)")
	secretFile := fs.String("secret-file", "", "file holding the API secret")
	date := fs.String("date", "", "YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD (default: yesterday and today)")
	reports := fs.String("reports", "", "report names, comma-separated (default: all the key reads)")
	types := fs.String("types", "scan_ntp,scan6_ntp,scan_ntpmonitor,scan6_ntpmonitor", "report types, comma-separated")
	csFile := fs.String("constituencies", "", "constituency file: map the pulled rows to local constituencies")
	space := fs.String("space", "", "the target space the reports' scans covered (e.g. 0.0.0.0/0 for Shadowserver's)")
	maxFile := fs.Int64("max-file", 1<<30, "largest file to download, in bytes")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *dsn == "" || *key == "" {
		return usagef("pull: -db and -key are required")
	}
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return err
		}
		*secret = strings.TrimSpace(string(b))
	}
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	var cs *store.Constituencies
	if *csFile != "" {
		if cs, err = store.LoadConstituencies(*csFile); err != nil {
			return err
		}
	}
	sp, err := parseSpace(*space)
	if err != nil {
		return usageError{err}
	}
	c := &api.Client{BaseURL: *apiURL, DownloadURL: *dlURL, Key: *key, Secret: *secret, HTTP: &http.Client{Timeout: 10 * time.Minute}}
	const listLimit = 10000
	req := api.ListRequest{Date: *date, Types: splitList(*types), Reports: splitList(*reports), Limit: listLimit}
	list, err := c.List(ctx, req)
	if err != nil {
		return err
	}
	if len(list) >= listLimit {
		fmt.Fprintf(stderr, "reportd pull: the list holds %d files, its limit: pull fewer days at a time to get them all\n", len(list))
	}
	for _, e := range list {
		// The name comes from the service: only a well-formed report
		// name of an NTP type is used, and only as a name.
		name := filepath.Base(e.File)
		if t, err := report.TypeFromFileName(name); err != nil || string(t) != e.Type {
			fmt.Fprintf(stdout, "skipped %s: not an NTP report file name\n", report.TerminalSafe(e.File))
			continue
		}
		res, err := pullOne(ctx, c, st, e.ID, name, *maxFile, store.CSVOptions{ImportOptions: store.ImportOptions{Constituencies: cs}, Space: sp})
		if err != nil {
			return fmt.Errorf("%s: %w", report.TerminalSafe(name), err)
		}
		state := "imported"
		if !res.Created {
			state = "already in the store"
		}
		fmt.Fprintf(stdout, "%s (%s): run %d, %s, %d rows\n", report.TerminalSafe(name), report.TerminalSafe(e.Report), res.Run.ID, state, res.Run.Rows)
	}
	return nil
}

// pullOne downloads a file to a temporary file (not to memory: reports
// can be large) and imports it.
func pullOne(ctx context.Context, c *api.Client, st *store.Store, id, name string, maxFile int64, opt store.CSVOptions) (store.ImportResult, error) {
	tmp, err := os.CreateTemp("", "reportd-pull-")
	if err != nil {
		return store.ImportResult{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := c.Download(ctx, id, &limitWriter{w: tmp, n: maxFile}); err != nil {
		return store.ImportResult{}, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return store.ImportResult{}, err
	}
	return st.ImportCSV(ctx, tmp, name, opt)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// limitWriter fails a write past n bytes.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, errors.New("file over the -max-file limit")
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}
