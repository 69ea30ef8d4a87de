package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLSMode says how a Relay uses TLS.
type TLSMode string

// The TLS modes.
const (
	// STARTTLSRequired refuses a relay that does not offer STARTTLS.
	STARTTLSRequired TLSMode = "starttls"
	// STARTTLSOpportunistic uses STARTTLS when offered (the default;
	// plain on loopback tests).
	STARTTLSOpportunistic TLSMode = "opportunistic"
	// ImplicitTLS connects with TLS from the start (port 465).
	ImplicitTLS TLSMode = "tls"
	// NoTLS never uses TLS.
	NoTLS TLSMode = "none"
)

// Relay is the SMTP server mails are handed to.
type Relay struct {
	// Addr is host:port.
	Addr string
	// HeloName is the name given in EHLO; "" means "localhost".
	HeloName string
	// TLS is how TLS is used; "" means STARTTLSOpportunistic.
	TLS       TLSMode
	TLSConfig *tls.Config
	// Username and Password authenticate with AUTH PLAIN when set (only
	// over TLS, unless the relay is on loopback).
	Username, Password string
	// Timeout bounds one delivery; 0 means one minute.
	Timeout time.Duration
}

// SendError is a failed delivery: the relay's answer, and whether it is
// permanent (a 5xx answer) or worth retrying (4xx, or no answer).
type SendError struct {
	Permanent bool
	Code      int    // the SMTP code, 0 when the relay did not answer
	Answer    string // what the relay said, or the network error
}

func (e *SendError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Code != 0 {
		return fmt.Sprintf("mail: %s failure: %d %s", kind, e.Code, e.Answer)
	}
	return fmt.Sprintf("mail: %s failure: %s", kind, e.Answer)
}

// Send hands one mail to the relay for the given recipients and returns
// the relay's answer to the end of the data (its queue id, usually).
// A failure is a *SendError.
func (r *Relay) Send(ctx context.Context, from string, to []string, msg []byte) (answer string, err error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host, _, _ := net.SplitHostPort(r.Addr)
	cfg := r.TLSConfig
	if cfg == nil {
		cfg = &tls.Config{ServerName: host}
	}
	helo := r.HeloName
	if helo == "" {
		helo = "localhost"
	}
	mode := r.TLS
	if mode == "" {
		mode = STARTTLSOpportunistic
	}
	if mode == STARTTLSOpportunistic {
		// Ask first: STARTTLS when the relay offers it.
		offered, err := r.offersSTARTTLS(ctx, helo)
		if err != nil {
			return "", err
		}
		mode = NoTLS
		if offered {
			mode = STARTTLSRequired
		}
	}
	conn, err := r.dial(ctx)
	if err != nil {
		return "", err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var c *smtp.Client
	secure := false
	switch mode {
	case ImplicitTLS:
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return "", &SendError{Answer: err.Error()}
		}
		c, secure = smtp.NewClient(tc), true
	case STARTTLSRequired:
		if c, err = smtp.NewClientStartTLS(conn, cfg); err != nil {
			conn.Close()
			return "", sendError(err)
		}
		secure = true
	default:
		c = smtp.NewClient(conn)
		if err := c.Hello(helo); err != nil {
			c.Close()
			return "", sendError(err)
		}
	}
	defer c.Close()
	if r.Username != "" {
		if !secure && !isLoopback(host) {
			return "", &SendError{Permanent: true, Answer: "refusing to send a password without TLS"}
		}
		if err := c.Auth(sasl.NewPlainClient("", r.Username, r.Password)); err != nil {
			return "", sendError(err)
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return "", sendError(err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return "", sendError(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", sendError(err)
	}
	if _, err := w.Write(msg); err != nil {
		return "", sendError(err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", sendError(err)
	}
	_ = c.Quit()
	return resp.StatusText, nil
}

func (r *Relay) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return nil, &SendError{Answer: err.Error()}
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return conn, nil
}

// offersSTARTTLS asks the relay whether it offers STARTTLS.
func (r *Relay) offersSTARTTLS(ctx context.Context, helo string) (bool, error) {
	conn, err := r.dial(ctx)
	if err != nil {
		return false, err
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello(helo); err != nil {
		return false, sendError(err)
	}
	ok, _ := c.Extension("STARTTLS")
	_ = c.Quit()
	return ok, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sendError classifies an SMTP failure: a 5xx answer is permanent,
// anything else (4xx, a broken connection) temporary.
func sendError(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return &SendError{Permanent: se.Code >= 500, Code: se.Code, Answer: strings.TrimSpace(se.Message)}
	}
	return &SendError{Answer: err.Error()}
}
