package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl/report/api"
	"github.com/ntpctl/ntpctl/report/store"
)

// served starts reportd serve with args and returns the lines it prints
// until it serves, and a function that stops it and returns the rest.
func served(t *testing.T, args []string) (head []string, stop func() string) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"serve"}, args...), pw, io.Discard)
		pw.Close()
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		head = append(head, sc.Text())
		if strings.HasPrefix(sc.Text(), "serving ") {
			break
		}
	}
	require.NotEmpty(t, head)
	require.True(t, strings.HasPrefix(head[len(head)-1], "serving "), "%q", head)
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(pr)
		rest <- string(b)
	}()
	stopped := false
	stop = func() string {
		if stopped {
			return ""
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(time.Minute):
			t.Fatal("serve did not stop")
		}
		return <-rest
	}
	t.Cleanup(func() { stop() })
	return head, stop
}

var servingRE = regexp.MustCompile(`at (http://127\.0\.0\.1:\d+/api2/) and downloads at (http://127\.0\.0\.1:\d+/dl/)`)

// TestServeLab: reportd serve with no arguments serves the lab's week;
// reportd pull fetches it into another store, file for file; a second
// pull imports nothing new; stopping is graceful.
func TestServeLab(t *testing.T) {
	head, stop := served(t, nil)
	text := strings.Join(head, "\n")
	m := servingRE.FindStringSubmatch(text)
	require.NotNil(t, m, text)
	key := regexp.MustCompile(`lab key: (\S+)`).FindStringSubmatch(text)[1]
	secret := regexp.MustCompile(`lab secret: ([0-9a-f]{32})`).FindStringSubmatch(text)[1]
	root := regexp.MustCompile(`week in (\S+)`).FindStringSubmatch(text)[1]
	t.Cleanup(func() { os.RemoveAll(root) })

	ctx := context.Background()
	c := &api.Client{BaseURL: m[1], DownloadURL: m[2], Key: key, Secret: secret}
	subs, err := c.Subscribed(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"as64496", "lab_hi"}, subs)
	list, err := c.List(ctx, api.ListRequest{Date: "2026-11-01:2026-11-07"})
	require.NoError(t, err)
	// as64496 has rows every day; lab_hi every day too (127.42.1.4-6).
	require.Len(t, list, 14)

	db := filepath.Join(t.TempDir(), "pulled.db")
	var out bytes.Buffer
	pull := []string{"pull", "-db", db, "-api", m[1], "-dl", m[2], "-key", key, "-secret", secret, "-date", "2026-11-01:2026-11-07"}
	require.NoError(t, run(ctx, pull, &out, &out))
	assert.Equal(t, 14, strings.Count(out.String(), ", imported, "), out.String())
	out.Reset()
	require.NoError(t, run(ctx, pull, &out, &out))
	assert.Equal(t, 14, strings.Count(out.String(), "already in the store"), out.String())

	// Each pulled run holds exactly the served file.
	pulled, err := store.Open(ctx, db)
	require.NoError(t, err)
	defer pulled.Close()
	runs, err := pulled.Runs(ctx)
	require.NoError(t, err)
	require.Len(t, runs, 14)
	bySource := map[string]store.Run{}
	for _, r := range runs {
		bySource[r.Source] = r
	}
	for _, e := range list {
		var served bytes.Buffer
		_, err := c.Download(ctx, e.ID, &served)
		require.NoError(t, err)
		r, ok := bySource[e.File]
		require.True(t, ok, "no run from %s", e.File)
		var got bytes.Buffer
		_, err = pulled.WriteReport(ctx, &got, store.ReportQuery{RunID: r.ID, Type: r.Types[0]})
		require.NoError(t, err)
		assert.Equal(t, served.String(), got.String(), e.File)
	}
	// The statistics pages, for the operator.
	opKey := regexp.MustCompile(`operator key: (\S+)`).FindStringSubmatch(text)[1]
	opSecret := regexp.MustCompile(`operator secret: ([0-9a-f]{32})`).FindStringSubmatch(text)[1]
	statsURL := regexp.MustCompile(`statistics pages at (\S+)`).FindStringSubmatch(text)[1]
	jar, _ := cookiejar.New(nil)
	res, err := (&http.Client{Jar: jar}).PostForm(statsURL+"login", url.Values{"key": {opKey}, "secret": {opSecret}})
	require.NoError(t, err)
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(page), `id="constituency">all constituencies<`)
	assert.Contains(t, string(page), `<a href="?c=lab_hi"`)

	assert.Contains(t, stop(), "reportd serve: stopped")
}

// TestServeConfig: a configuration file, relative paths and all.
func TestServeConfig(t *testing.T) {
	root, key, secret, err := labStore(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	cfg := filepath.Join(root, "reportd.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\ndb: store.db\nconstituencies: constituencies.yaml\napi_path: /v2/\ndownload_path: /files/\nlimits: {rate: 5, burst: 5, max_body: 4096, timeout: 10s}\n"), 0o600))
	head, _ := served(t, []string{"-config", cfg})
	m := regexp.MustCompile(`at (http://\S+/v2/) and downloads at (http://\S+/files/)`).FindStringSubmatch(head[len(head)-1])
	require.NotNil(t, m, head)
	c := &api.Client{BaseURL: m[1], DownloadURL: m[2], Key: key, Secret: secret}
	_, err = c.Ping(context.Background())
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nport: 80\n"), 0o600))
	err = run(context.Background(), []string{"serve", "-config", cfg}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "field port not found")
}

// TestServeTLS: the service over HTTPS from a certificate and key file.
func TestServeTLS(t *testing.T) {
	root, key, secret, err := labStore(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reportd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(priv)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(root, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	cfg := filepath.Join(root, "reportd.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\ndb: store.db\nconstituencies: constituencies.yaml\ntls: {cert: cert.pem, key: key.pem}\n"), 0o600))
	head, _ := served(t, []string{"-config", cfg})
	m := regexp.MustCompile(`at (https://\S+/api2/) and downloads at (https://\S+/dl/)`).FindStringSubmatch(head[len(head)-1])
	require.NotNil(t, m, head)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c := &api.Client{BaseURL: m[1], DownloadURL: m[2], Key: key, Secret: secret, HTTP: hc}
	_, err = c.Ping(context.Background())
	require.NoError(t, err)
	// Plain HTTP to the TLS port gets no API answer.
	_, err = (&api.Client{BaseURL: strings.Replace(m[1], "https:", "http:", 1), Key: key, Secret: secret}).Ping(context.Background())
	assert.Error(t, err)
}

// TestMailDryRun: reportd mail -dry-run writes the lab's mails for a
// day as .eml files, one per non-empty report and contact.
func TestMailDryRun(t *testing.T) {
	root, _, _, err := labStore(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	dir := t.TempDir()
	var out bytes.Buffer
	err = run(context.Background(), []string{"mail", "-db", filepath.Join(root, "store.db"), "-constituencies", filepath.Join(root, "constituencies.yaml"),
		"-from", "autoreports@reports.example", "-day", "2026-11-07", "-dry-run", dir, "-dl", "https://reports.example/dl/"}, &out, &out)
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "0 sent, 2 written, 0 failed")
	files, err := filepath.Glob(filepath.Join(dir, "2026-11-07-scan_ntp-*.eml"))
	require.NoError(t, err)
	assert.Len(t, files, 2, "as64496 and lab_hi, one contact each")
	err = run(context.Background(), []string{"mail", "-db", "x.db", "-constituencies", "c.yaml", "-from", "a@b.example"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "one of -relay and -dry-run")
}
