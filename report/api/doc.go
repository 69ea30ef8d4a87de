// Package api serves and calls Shadowserver's Reports API (version 2),
// so that the clients CERTs already run against Shadowserver (IntelMQ's
// Shadowserver Reports API collector, Shadowserver's call-api.py and
// report-manager.py, and others) can be pointed at a store of their own.
//
// The server (NewServer) answers POST <base>/<method> for the methods
// test/ping, key/info, reports/subscribed, reports/types, reports/list,
// reports/query, reports/stats and reports/schema. Each body is a JSON
// object holding the key ("apikey"); the header HMAC2 carries the
// lower-case hex HMAC-SHA256 of the exact body bytes under the key's
// secret. A key reads only the constituencies whose entries name it in
// the constituency file. Errors are a status other than 200 with
// {"error": "…"}.
//
// Downloads are GET <dl-base>/<id>, where the id is a 128-bit random
// token handed out by reports/list (the only credential, revocable with
// store.Store.Revoke).
//
// The Client speaks the same protocol, to this server or to
// Shadowserver's own.
package api
