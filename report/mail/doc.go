// Package mail delivers each constituency's daily reports by e-mail in
// the shape of Shadowserver's report mails, which IntelMQ's mail
// collectors, n6, AbuseIO and home-grown scripts read: one mail per
// constituency, report type and day (none for an empty report), the
// subject "[List] Shadowserver List NTP Version Report: YYYY-MM-DD", a
// text body with the remediation advice and the report's download URL,
// the CSV attached zipped (or plain, or not at all), List-ID,
// Precedence and Auto-Submitted headers, and an optional DKIM signature
// (aligned with From, the address fields oversigned).
//
// Deliver sends a day's reports through an SMTP relay (Relay), logging
// each mail in the store: a mail is sent once, whatever runs overlap or
// stop halfway. A contact's reports can instead go as one mail per type
// (GroupContact), and a report too large for a mail goes by its URL or
// in parts (Options.MaxSize, Oversize).
package mail
