// Package event is the contract of one log event: its JSON shape, the validator the reader runs on every line
// before forwarding it, and a deterministic generator of realistic events for tests, demos and load.
//
// An event is one JSON object per line with the keys eventId (UInt32), level, source, timestamp, computer,
// user and message. The reader forwards the original bytes of a line once it validates, so the validator
// decides what ClickHouse's JSONEachRow will later be asked to parse; it is a hand-rolled single-pass scanner
// because it runs on every line on the hot path (see BenchmarkValidateStrict).
//
// # Strict mode
//
// A line is accepted when it is a JSON object, optionally surrounded by JSON whitespace, and:
//   - each of the seven keys appears exactly once at the top level (keys are compared after decoding their
//     escapes, as ClickHouse does); other keys are allowed and may repeat, because ClickHouse skips them;
//   - eventId is a plain JSON integer 0..4294967295: no sign, no fraction, no exponent. A negative or too
//     large integer is event_id_out_of_range; a fraction or exponent, or a non-number, is wrong_type;
//   - every other known key holds a string, and level is not empty (an empty level is missing_field);
//   - timestamp is YYYY-MM-DD hh:mm:ss with an optional '.' and 1 to 6 fraction digits, a real calendar date
//     in 1900..2299 (the range of DateTime64), written without escape sequences because ClickHouse reads the
//     value straight from the input. The date and time may also be separated by 'T': ClickHouse's default
//     date_time_input_format=basic reads the separator position without requiring a space. No time zone
//     suffix is accepted; timestamps are UTC by convention;
//   - every string, escapes included, is valid Unicode: a \u escape of a lone UTF-16 surrogate is rejected
//     as invalid_utf8, because ClickHouse either fails on it (high surrogate) or stores invalid UTF-8 (low).
//
// Strict accepts a subset of what ClickHouse reads, chosen so that a line it accepts always lands with the
// values it holds. The integration tests check this against the real engine (TestIntegrationClickHouse*):
// ClickHouse fails the whole message on a signed, fractional or exponent eventId, on a lone high surrogate,
// on an escaped or impossible timestamp, and on a duplicated column met before the last one; it silently
// wraps eventIds above 4294967295, reads "42" and null as numbers, keeps the first of a duplicated column
// met after the last one, and stores a lone low surrogate as invalid UTF-8. It is more permissive than
// Strict about timestamps (date only, a Z suffix, more fraction digits, 24:00:00, unix seconds), which
// Strict refuses so that every accepted timestamp means one unambiguous instant.
//
// # Lenient mode
//
// A line is accepted when it is valid UTF-8 and a syntactically valid JSON object. Lone surrogate escapes
// are syntactically valid JSON and pass.
//
// # Both modes
//
// Empty and whitespace-only lines are empty_line; nesting deeper than MaxDepth is too_deep; a UTF-8 byte
// order mark at the start is invalid_json (its Detail says BOM); a NUL byte anywhere is invalid JSON (raw
// control characters are not allowed in JSON strings); a JSON value that is not an object is not_object.
// Syntax problems take precedence: a line with both a syntax error and a schema problem is reported with
// the syntax reason, and among schema problems the first one met wins.
package event
