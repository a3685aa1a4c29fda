package event

// runeAt decodes the UTF-8 sequence starting at s[i], which must be a byte >= 0x80, and returns its size, or
// 0 when the bytes there are not valid UTF-8 (overlong forms, surrogates and values above U+10FFFF included).
// It is written out rather than calling unicode/utf8 so that it serves both strings and byte slices without
// conversions, and so that the size check needs no RuneError disambiguation.
func runeAt[T string | []byte](s T, i int) int {
	n := len(s) - i
	c0 := s[i]
	switch {
	case c0 < 0xC2:
		return 0
	case c0 < 0xE0:
		if n < 2 || !cont(s[i+1]) {
			return 0
		}
		return 2
	case c0 < 0xF0:
		if n < 3 || !cont(s[i+2]) {
			return 0
		}
		c1 := s[i+1]
		lo, hi := byte(0x80), byte(0xBF)
		if c0 == 0xE0 {
			lo = 0xA0 // overlong
		} else if c0 == 0xED {
			hi = 0x9F // UTF-16 surrogates
		}
		if c1 < lo || c1 > hi {
			return 0
		}
		return 3
	case c0 < 0xF5:
		if n < 4 || !cont(s[i+2]) || !cont(s[i+3]) {
			return 0
		}
		c1 := s[i+1]
		lo, hi := byte(0x80), byte(0xBF)
		if c0 == 0xF0 {
			lo = 0x90 // overlong
		} else if c0 == 0xF4 {
			hi = 0x8F // above U+10FFFF
		}
		if c1 < lo || c1 > hi {
			return 0
		}
		return 4
	}
	return 0
}

func cont(c byte) bool { return c&0xC0 == 0x80 }
