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
// permanent (a 5xx answer to a recipient or to the mail's data) or worth
// retrying (anything else).
type SendError struct {
	Permanent bool
	// Uncertain: the connection failed after the whole mail was sent,
	// before the relay's answer; it may have been accepted.
	Uncertain bool
	Code      int    // the SMTP code, 0 when the relay did not answer
	Answer    string // what the relay said, or the network error
}

func (e *SendError) Error() string {
	kind := "temporary"
	switch {
	case e.Permanent:
		kind = "permanent"
	case e.Uncertain:
		kind = "uncertain"
	}
	if e.Code != 0 {
		return fmt.Sprintf("mail: %s failure: %d %s", kind, e.Code, e.Answer)
	}
	return fmt.Sprintf("mail: %s failure: %s", kind, e.Answer)
}

// ErrRelayConfig: the Relay cannot be used as configured (an unknown TLS
// mode, a password without TLS to a remote relay).
var ErrRelayConfig = errors.New("mail: relay configuration")

// Check reports a Relay that cannot be used as configured.
func (r *Relay) Check() error {
	switch r.TLS {
	case "", STARTTLSOpportunistic, STARTTLSRequired, ImplicitTLS, NoTLS:
	default:
		return fmt.Errorf("%w: unknown TLS mode %q (opportunistic, starttls, tls, none)", ErrRelayConfig, r.TLS)
	}
	host, _, err := net.SplitHostPort(r.Addr)
	if err != nil {
		return fmt.Errorf("%w: address %q: %v", ErrRelayConfig, r.Addr, err)
	}
	if r.Username != "" && (r.TLS == NoTLS || r.TLS == STARTTLSOpportunistic || r.TLS == "") && !isLoopback(host) {
		return fmt.Errorf("%w: AUTH to %s needs -tls starttls or tls (no password over a connection that may be plain)", ErrRelayConfig, host)
	}
	return nil
}

// Send hands one mail to the relay for the given recipients and returns
// the relay's answer to the end of the data (its queue id, usually).
// A failure is a *SendError, or ErrRelayConfig. Cancelling ctx stops a
// delivery unless the whole mail is sent: then the relay's answer is
// awaited (for up to Timeout), so that an accepted mail is not taken for
// a failed one. With STARTTLS the greeting is go-smtp's ("localhost"),
// not HeloName.
func (r *Relay) Send(ctx context.Context, from string, to []string, msg []byte) (answer string, err error) {
	if err := r.Check(); err != nil {
		return "", err
	}
	if ctx.Err() != nil {
		return "", &SendError{Answer: ctx.Err().Error()}
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	host, _, _ := net.SplitHostPort(r.Addr)
	cfg := &tls.Config{}
	if r.TLSConfig != nil {
		cfg = r.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
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
		offered, err := r.offersSTARTTLS(ctx, helo, timeout)
		if err != nil {
			return "", err
		}
		mode = NoTLS
		if offered {
			mode = STARTTLSRequired
		}
	}
	conn, err := r.dial(wctx)
	if err != nil {
		return "", err
	}
	// Until the mail is sent, cancelling ctx (or the timeout) cuts the
	// connection.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var c *smtp.Client
	secure := false
	switch mode {
	case ImplicitTLS:
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(wctx); err != nil {
			conn.Close()
			return "", &SendError{Answer: err.Error()}
		}
		c, secure = smtp.NewClient(tc), true
	case STARTTLSRequired:
		if c, err = smtp.NewClientStartTLS(conn, cfg); err != nil {
			conn.Close()
			return "", sendError(err, false)
		}
		secure = true
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = timeout, timeout
	if mode == ImplicitTLS || mode == NoTLS {
		if err := c.Hello(helo); err != nil {
			return "", sendError(err, false)
		}
	}
	if r.Username != "" {
		if !secure && !isLoopback(host) {
			return "", fmt.Errorf("%w: refusing to send a password without TLS", ErrRelayConfig)
		}
		if err := c.Auth(sasl.NewPlainClient("", r.Username, r.Password)); err != nil {
			return "", sendError(err, false)
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return "", sendError(err, false)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return "", sendError(err, true)
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", sendError(err, false)
	}
	if _, err := w.Write(msg); err != nil {
		return "", sendError(err, false)
	}
	if !stop() {
		return "", &SendError{Answer: "cancelled"}
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			return "", &SendError{Uncertain: true, Answer: err.Error()}
		}
		return "", sendError(err, true)
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
	return conn, nil
}

// offersSTARTTLS asks the relay whether it offers STARTTLS.
func (r *Relay) offersSTARTTLS(ctx context.Context, helo string, timeout time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := r.dial(ctx)
	if err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c := smtp.NewClient(conn)
	defer c.Close()
	c.CommandTimeout = timeout
	if err := c.Hello(helo); err != nil {
		return false, sendError(err, false)
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

// sendError classifies an SMTP failure: a 5xx answer is permanent where
// it is about this mail (final: to a recipient, or to the data); anything
// else (4xx, a 5xx to the greeting, EHLO, AUTH or MAIL, a broken
// connection) is temporary: a relay's trouble is not a contact's.
func sendError(err error, final bool) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return &SendError{Permanent: final && se.Code >= 500, Code: se.Code, Answer: strings.TrimSpace(se.Message)}
	}
	return &SendError{Answer: err.Error()}
}
