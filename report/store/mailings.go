package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ntpctl/ntpctl/report"
)

// MailStatus is where a report's mail to one contact stands.
type MailStatus string

// The delivery states.
const (
	// Sending: handed to the relay, no answer recorded yet (a run that
	// stopped here sends again, with the same Message-ID).
	Sending MailStatus = "sending"
	// Sent: the relay accepted it; it is never sent again.
	Sent MailStatus = "sent"
	// Failed: a temporary failure (4xx, relay down); the next run retries.
	Failed MailStatus = "failed"
	// Rejected: a permanent failure (5xx); not retried.
	Rejected MailStatus = "rejected"
)

// Mailing is one report's mail to one contact, or one part of it, as the
// delivery log keeps it.
type Mailing struct {
	RunID        int64
	Type         report.Type
	Constituency string
	Contact      string
	// Part is the part of a report sent in several mails (1 … Parts),
	// 0 for a report sent whole (Parts 1).
	Part, Parts int
	Status      MailStatus
	MessageID   string
	// Answer is the relay's last answer (or the error).
	Answer   string
	Attempts int
	Updated  time.Time
}

const mailingColumns = `run_id, type, constituency, contact, part, parts, status, message_id, answer, attempts, updated`

func scanMailing(sc interface{ Scan(...any) error }) (Mailing, error) {
	var d Mailing
	var t, status string
	var updated int64
	err := sc.Scan(&d.RunID, &t, &d.Constituency, &d.Contact, &d.Part, &d.Parts, &status, &d.MessageID, &d.Answer, &d.Attempts, &updated)
	d.Type, d.Status, d.Updated = report.Type(t), MailStatus(status), time.UnixMicro(updated).UTC()
	return d, err
}

func (s *Store) mailings(ctx context.Context, what, where string, args ...any) ([]Mailing, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+mailingColumns+` FROM deliveries d WHERE `+where+
		` ORDER BY d.constituency, d.type, d.contact, d.part`), args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	var out []Mailing
	for rows.Next() {
		d, err := scanMailing(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return out, nil
}

// MailingsOf returns the log's entries for a report and contact: one
// for a report sent whole, one per part for one sent in parts; none if
// it was never tried.
func (s *Store) MailingsOf(ctx context.Context, runID int64, t report.Type, constituency, contact string) ([]Mailing, error) {
	return s.mailings(ctx, "mailings", `d.run_id = ? AND d.type = ? AND d.constituency = ? AND d.contact = ?`,
		runID, string(t), constituency, contact)
}

// Mailings returns the log's entries for the runs of a day
// (YYYY-MM-DD), by constituency, type, contact and part.
func (s *Store) Mailings(ctx context.Context, day string) ([]Mailing, error) {
	return s.mailings(ctx, "mailings", `d.run_id IN (SELECT id FROM runs WHERE day = ?)`, day)
}

// ClaimMailings claims mails for a sender (holder, a name unique to one
// run of a program) until lease has passed, and marks them Sending: all
// of ms or none. A mail can be claimed when it was never tried, when it
// failed, or when it is Sending under an expired lease (a run that
// stopped) or under the same holder; one Sent or Rejected, or Sending
// under another holder's lease, cannot. The entries' Status, Answer and
// Updated are ignored; MessageID and Attempts are written.
func (s *Store) ClaimMailings(ctx context.Context, holder string, lease time.Duration, ms []Mailing) (bool, error) {
	if holder == "" {
		return false, errors.New("store: claim mailings: no holder")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: claim mailings: %w", err)
	}
	defer tx.Rollback()
	now := time.Now()
	for _, d := range ms {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO deliveries (`+mailingColumns+`, holder, lease)
			VALUES (?, ?, ?, ?, ?, ?, 'sending', ?, '', ?, ?, ?, ?)
			ON CONFLICT (run_id, type, constituency, contact, part) DO UPDATE SET parts = excluded.parts, status = 'sending',
				message_id = excluded.message_id, attempts = excluded.attempts, updated = excluded.updated,
				holder = excluded.holder, lease = excluded.lease
			WHERE deliveries.status = 'failed' OR deliveries.status = 'sending' AND (deliveries.lease < ? OR deliveries.holder = excluded.holder)`),
			d.RunID, string(d.Type), d.Constituency, d.Contact, d.Part, max(d.Parts, 1), d.MessageID, d.Attempts,
			now.UnixMicro(), holder, now.Add(lease).UnixMicro(), now.UnixMicro())
		if err != nil {
			return false, fmt.Errorf("store: claim mailings: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: claim mailings: %w", err)
	}
	return true, nil
}

// RecordMailing writes a delivery's state (Updated is set to now) and
// ends any claim on it. A mail recorded as sent stays sent.
func (s *Store) RecordMailing(ctx context.Context, d Mailing) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO deliveries (`+mailingColumns+`, holder, lease)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0)
		ON CONFLICT (run_id, type, constituency, contact, part) DO UPDATE SET parts = excluded.parts, status = excluded.status,
			message_id = excluded.message_id, answer = excluded.answer, attempts = excluded.attempts, updated = excluded.updated,
			holder = '', lease = 0
		WHERE deliveries.status <> 'sent'`),
		d.RunID, string(d.Type), d.Constituency, d.Contact, d.Part, max(d.Parts, 1), string(d.Status), d.MessageID, d.Answer, d.Attempts,
		time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("store: record mailing: %w", err)
	}
	return nil
}
