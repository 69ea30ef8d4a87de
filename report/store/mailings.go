package store

import (
	"context"
	"database/sql"
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

// Mailing is one report's mail to one contact, as the delivery log keeps it.
type Mailing struct {
	RunID        int64
	Type         report.Type
	Constituency string
	Contact      string
	Status       MailStatus
	MessageID    string
	// Answer is the relay's last answer (or the error).
	Answer   string
	Attempts int
	Updated  time.Time
}

// Mailing returns the log's entry for a report and contact, or
// ErrNotFound.
func (s *Store) Mailing(ctx context.Context, runID int64, t report.Type, constituency, contact string) (Mailing, error) {
	d := Mailing{RunID: runID, Type: t, Constituency: constituency, Contact: contact}
	var status string
	var updated int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT status, message_id, answer, attempts, updated FROM deliveries
		WHERE run_id = ? AND type = ? AND constituency = ? AND contact = ?`), runID, string(t), constituency, contact).
		Scan(&status, &d.MessageID, &d.Answer, &d.Attempts, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("store: mailing: %w", err)
	}
	d.Status, d.Updated = MailStatus(status), time.UnixMicro(updated).UTC()
	return d, nil
}

// RecordMailing writes a delivery's state (Updated is set to now). A
// mail recorded as sent stays sent.
func (s *Store) RecordMailing(ctx context.Context, d Mailing) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO deliveries (run_id, type, constituency, contact, status, message_id, answer, attempts, updated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id, type, constituency, contact) DO UPDATE SET status = excluded.status, message_id = excluded.message_id,
			answer = excluded.answer, attempts = excluded.attempts, updated = excluded.updated
		WHERE deliveries.status <> 'sent'`),
		d.RunID, string(d.Type), d.Constituency, d.Contact, string(d.Status), d.MessageID, d.Answer, d.Attempts, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("store: record mailing: %w", err)
	}
	return nil
}

// Mailings returns the log's entries for the runs of a day
// (YYYY-MM-DD), by constituency, type and contact.
func (s *Store) Mailings(ctx context.Context, day string) ([]Mailing, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT d.run_id, d.type, d.constituency, d.contact, d.status, d.message_id, d.answer, d.attempts, d.updated
		FROM deliveries d JOIN runs u ON u.id = d.run_id WHERE u.day = ? ORDER BY d.constituency, d.type, d.contact`), day)
	if err != nil {
		return nil, fmt.Errorf("store: mailings: %w", err)
	}
	defer rows.Close()
	var out []Mailing
	for rows.Next() {
		var d Mailing
		var t, status string
		var updated int64
		if err := rows.Scan(&d.RunID, &t, &d.Constituency, &d.Contact, &status, &d.MessageID, &d.Answer, &d.Attempts, &updated); err != nil {
			return nil, err
		}
		d.Type, d.Status, d.Updated = report.Type(t), MailStatus(status), time.UnixMicro(updated).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}
