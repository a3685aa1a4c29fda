package event

import "time"

// TimestampLayout is how timestamps are written: UTC, microseconds, the form ClickHouse's JSONEachRow parses
// into DateTime64(6) with default settings.
const TimestampLayout = "2006-01-02 15:04:05.000000"

// The range of DateTime64 that a strict timestamp must fall in.
const (
	minTimestampYear = 1900
	maxTimestampYear = 2299
)

// checkTimestamp returns "" when t is YYYY-MM-DD hh:mm:ss (or with 'T' between date and time) with an
// optional '.' and 1..6 digits, naming a real calendar date and time within DateTime64's range; otherwise
// it returns why not, in a few words.
func checkTimestamp(t []byte) string {
	const shape = "want YYYY-MM-DD hh:mm:ss with up to 6 fraction digits"
	if len(t) < 19 || len(t) == 20 || len(t) > 26 {
		return shape
	}
	if t[4] != '-' || t[7] != '-' || (t[10] != ' ' && t[10] != 'T') || t[13] != ':' || t[16] != ':' {
		return shape
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if t[i] < '0' || t[i] > '9' {
			return shape
		}
	}
	if len(t) > 19 {
		if t[19] != '.' {
			return shape
		}
		for _, c := range t[20:] {
			if c < '0' || c > '9' {
				return shape
			}
		}
	}
	d2 := func(i int) int { return int(t[i]-'0')*10 + int(t[i+1]-'0') }
	year := d2(0)*100 + d2(2)
	month, day := d2(5), d2(8)
	if year < minTimestampYear || year > maxTimestampYear {
		return "year outside 1900..2299"
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) {
		return "no such date"
	}
	if d2(11) > 23 || d2(14) > 59 || d2(17) > 59 {
		return "no such time of day"
	}
	return ""
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// appendTimestamp appends t in TimestampLayout (UTC).
func appendTimestamp(dst []byte, t time.Time) []byte {
	y := t.UTC().Year()
	if y < 0 || y > 9999 {
		return t.UTC().AppendFormat(dst, TimestampLayout)
	}
	return appendMicros(dst, t.UnixMicro())
}

// appendMicros appends the UTC time us microseconds after the Unix epoch in TimestampLayout, for years
// 0..9999. It does the calendar arithmetic itself (civil-from-days) because the generator formats one
// timestamp per event and time.Time.AppendFormat is several times slower.
func appendMicros(dst []byte, us int64) []byte {
	secs := floorDiv(us, 1e6)
	frac := us - secs*1e6
	days := floorDiv(secs, 86400)
	sod := secs - days*86400
	y, m, d := civil(days)
	var b [26]byte
	put4(b[0:], y)
	b[4] = '-'
	put2(b[5:], m)
	b[7] = '-'
	put2(b[8:], d)
	b[10] = ' '
	put2(b[11:], int(sod/3600))
	b[13] = ':'
	put2(b[14:], int(sod/60%60))
	b[16] = ':'
	put2(b[17:], int(sod%60))
	b[19] = '.'
	f := int(frac)
	for i := 25; i >= 20; i-- {
		b[i] = byte('0' + f%10)
		f /= 10
	}
	return append(dst, b[:]...)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
func civil(days int64) (year, month, day int) {
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return int(y), int(m), int(d)
}

func put2(b []byte, v int) {
	b[0] = byte('0' + v/10)
	b[1] = byte('0' + v%10)
}

func put4(b []byte, v int) {
	b[0] = byte('0' + v/1000)
	b[1] = byte('0' + v/100%10)
	b[2] = byte('0' + v/10%10)
	b[3] = byte('0' + v%10)
}
