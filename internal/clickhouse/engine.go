package clickhouse

import (
	"regexp"
	"strings"
)

// canonicalEngine undoes the engine rewrites ClickHouse applies where users run it, on one statement as
// formatQuerySingleLine prints it, so that a stored definition compares equal to the DDL it came from:
//
//   - ClickHouse Cloud turns MergeTree into SharedMergeTree (with or without its path and replica arguments);
//   - a database with the Replicated engine turns MergeTree into ReplicatedMergeTree with the default
//     arguments, and on self-managed clusters the tables may be created as ReplicatedMergeTree on purpose.
//
// Shared<X>MergeTree and Replicated<X>MergeTree become <X>MergeTree; their leading ZooKeeper path and replica
// name arguments (two string literals) are dropped, the engine's own arguments after them are kept. Nothing
// else changes: columns, keys, settings and the Kafka engine's settings still count.
func canonicalEngine(q string) string {
	const marker = "ENGINE = "
	var b strings.Builder
	for {
		i := strings.Index(q, marker)
		if i < 0 {
			b.WriteString(q)
			return b.String()
		}
		b.WriteString(q[:i+len(marker)])
		q = q[i+len(marker):]
		m := replicatedEngine.FindStringSubmatch(q)
		if m == nil {
			continue
		}
		b.WriteString(m[1])
		q = q[len(m[0]):]
		if !strings.HasPrefix(q, "(") {
			continue
		}
		args, rest, ok := splitArgs(q)
		if !ok {
			continue
		}
		if len(args) >= 2 && isStringLiteral(args[0]) && isStringLiteral(args[1]) {
			args = args[2:]
		}
		if len(args) > 0 {
			b.WriteString("(" + strings.Join(args, ", ") + ")")
		}
		q = rest
	}
}

var replicatedEngine = regexp.MustCompile(`^(?:Shared|Replicated)(\w*MergeTree)\b`)

// splitArgs splits "(a, 'b, c', f(d, e)) rest" into its top-level arguments and what follows the closing
// parenthesis, respecting string literals and nested parentheses.
func splitArgs(s string) (args []string, rest string, ok bool) {
	depth, start := 0, 1
	inStr := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case inStr:
			if ch == '\\' {
				i++
			} else if ch == '\'' {
				inStr = false
			}
		case ch == '\'':
			inStr = true
		case ch == '(':
			depth++
		case ch == ')':
			depth--
			if depth == 0 {
				if a := strings.TrimSpace(s[start:i]); a != "" || len(args) > 0 {
					args = append(args, a)
				}
				return args, s[i+1:], true
			}
		case ch == ',' && depth == 1:
			args = append(args, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return nil, s, false
}

func isStringLiteral(s string) bool {
	return len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\''
}

// commentSuffix matches the COMMENT clause formatQuerySingleLine prints last.
var commentSuffix = regexp.MustCompile(` COMMENT '((?:[^'\\]|\\.)*)'$`)

// splitComment returns a single-line statement without its trailing COMMENT clause, and the comment.
func splitComment(q string) (body, comment string) {
	m := commentSuffix.FindStringSubmatchIndex(q)
	if m == nil {
		return q, ""
	}
	return q[:m[0]], q[m[2]:m[3]]
}
