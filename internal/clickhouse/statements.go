package clickhouse

import "strings"

// SplitStatements cuts a script into its statements at the semicolons outside quotes and comments, as
// ClickHouse's HTTP interface takes one statement per request. "--" and "#" line comments and /* */ block
// comments are dropped; quoted strings and identifiers ('...', "...", `...`, with backslash escapes and
// doubled quotes) are kept whole. Empty statements are left out.
func SplitStatements(script string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(script); i++ {
		ch := script[i]
		switch {
		case ch == '\'' || ch == '"' || ch == '`':
			j := i + 1
			for j < len(script) {
				if script[j] == '\\' {
					j += 2
					continue
				}
				if script[j] == ch {
					if j+1 < len(script) && script[j+1] == ch { // a doubled quote stands for itself
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j, len(script)-1)
			cur.WriteString(script[i : j+1])
			i = j
		case ch == '-' && strings.HasPrefix(script[i:], "--"), ch == '#':
			for i < len(script) && script[i] != '\n' {
				i++
			}
			cur.WriteByte('\n')
		case ch == '/' && strings.HasPrefix(script[i:], "/*"):
			end := strings.Index(script[i+2:], "*/")
			if end < 0 {
				i = len(script)
			} else {
				i += 2 + end + 1
			}
			cur.WriteByte(' ')
		case ch == ';':
			flush()
		default:
			cur.WriteByte(ch)
		}
	}
	flush()
	return out
}
