package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Shadowserver's own service.
const (
	ShadowserverAPI       = "https://transform.shadowserver.org/api2/"
	ShadowserverDownloads = "https://dl.shadowserver.org/"
)

// ErrAccessDenied: the service refused the key or its HMAC (status 401).
var ErrAccessDenied = errors.New("api: access denied")

// Error is an answer other than 200: its status and the service's error
// text. It matches ErrAccessDenied for status 401.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("api: %d: %s", e.Status, e.Message) }

// Is makes a 401 match ErrAccessDenied.
func (e *Error) Is(target error) bool {
	return target == ErrAccessDenied && e.Status == http.StatusUnauthorized
}

// Client calls a Reports API. The zero value, with Key and Secret set,
// calls Shadowserver's.
type Client struct {
	// BaseURL is the API's base, ending in "/"; "" means ShadowserverAPI.
	BaseURL string
	// DownloadURL is the downloads' base, ending in "/"; "" means
	// ShadowserverDownloads.
	DownloadURL string
	Key, Secret string
	// HTTP is the HTTP client; nil means http.DefaultClient.
	HTTP *http.Client
	// MaxResponse limits an API answer's size; 0 means 256 MiB.
	MaxResponse int64
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func base(u, def string) string {
	if u == "" {
		u = def
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u
}

// Call calls method (such as "reports/list") with the fields of req (a
// struct or map that encodes as a JSON object; nil for none), signs it
// and decodes the answer into resp.
func (c *Client) Call(ctx context.Context, method string, req, resp any) error {
	fields := map[string]any{}
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("api: %s: %w", method, err)
		}
		if err := json.Unmarshal(b, &fields); err != nil {
			return fmt.Errorf("api: %s: the request is not an object: %w", method, err)
		}
	}
	fields["apikey"] = c.Key
	body, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("api: %s: %w", method, err)
	}
	return c.CallRaw(ctx, method, body, resp)
}

// CallRaw sends body, exactly as given, to method, signed with the
// secret, and decodes the answer into resp.
func (c *Client) CallRaw(ctx context.Context, method string, body []byte, resp any) error {
	m := hmac.New(sha256.New, []byte(c.Secret))
	m.Write(body)
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, base(c.BaseURL, ShadowserverAPI)+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("api: %s: %w", method, err)
	}
	r.Header.Set("HMAC2", hex.EncodeToString(m.Sum(nil)))
	res, err := c.http().Do(r)
	if err != nil {
		return fmt.Errorf("api: %s: %w", method, err)
	}
	defer res.Body.Close()
	limit := c.MaxResponse
	if limit <= 0 {
		limit = 256 << 20
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return fmt.Errorf("api: %s: %w", method, err)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("api: %s: answer over %d bytes", method, limit)
	}
	var e struct {
		Error *string `json:"error"`
	}
	if res.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != nil {
			msg = *e.Error
		}
		return &Error{Status: res.StatusCode, Message: msg}
	}
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '{' && json.Unmarshal(b, &e) == nil && e.Error != nil {
		// An error with status 200, which some services send.
		return &Error{Status: res.StatusCode, Message: *e.Error}
	}
	if resp == nil {
		return nil
	}
	if err := json.Unmarshal(b, resp); err != nil {
		return fmt.Errorf("api: %s: %w", method, err)
	}
	return nil
}

// Ping calls test/ping and returns the service's time.
func (c *Client) Ping(ctx context.Context) (string, error) {
	var res struct {
		Pong string `json:"pong"`
	}
	err := c.Call(ctx, "test/ping", nil, &res)
	if err == nil && res.Pong == "" {
		err = errors.New("api: test/ping: no pong")
	}
	return res.Pong, err
}

// Subscribed returns the report names the key may read.
func (c *Client) Subscribed(ctx context.Context) ([]string, error) {
	var out []string
	err := c.Call(ctx, "reports/subscribed", nil, &out)
	return out, err
}

// ListRequest is the request of reports/list.
type ListRequest struct {
	// Reports are the report names; none means all of the key's.
	Reports []string `json:"reports,omitempty"`
	// Date is YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD.
	Date  string   `json:"date,omitempty"`
	Types []string `json:"types,omitempty"`
	Limit int      `json:"limit,omitempty"`
}

// List calls reports/list.
func (c *Client) List(ctx context.Context, req ListRequest) ([]Entry, error) {
	var out []Entry
	err := c.Call(ctx, "reports/list", req, &out)
	return out, err
}

// QueryRequest is the request of reports/query.
type QueryRequest struct {
	Query map[string]any `json:"query"`
	Date  string         `json:"date,omitempty"`
	Sort  string         `json:"sort,omitempty"` // ascending or descending
	Limit int            `json:"limit,omitempty"`
	Page  int            `json:"page,omitempty"`
}

// Query calls reports/query and returns the rows as objects of their
// columns.
func (c *Client) Query(ctx context.Context, req QueryRequest) ([]map[string]any, error) {
	var out []map[string]any
	err := c.Call(ctx, "reports/query", req, &out)
	return out, err
}

// Download fetches a report file by its id into w, and returns the file
// name the service gave it (from Content-Disposition, "" if none).
// Downloads carry no key.
func (c *Client) Download(ctx context.Context, id string, w io.Writer) (name string, err error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, base(c.DownloadURL, ShadowserverDownloads)+url.PathEscape(id), nil)
	if err != nil {
		return "", fmt.Errorf("api: download: %w", err)
	}
	res, err := c.http().Do(r)
	if err != nil {
		return "", fmt.Errorf("api: download: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return "", &Error{Status: res.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	if _, params, err := mime.ParseMediaType(res.Header.Get("Content-Disposition")); err == nil {
		name = params["filename"]
	}
	if _, err := io.Copy(w, res.Body); err != nil {
		return name, fmt.Errorf("api: download: %w", err)
	}
	return name, nil
}
