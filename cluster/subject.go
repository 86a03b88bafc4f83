package cluster

// ValidSubject reports whether subject follows the Bus's rules: ASCII
// letters, digits and "-_.", with no empty element between dots. Every Bus
// of this module answers a method given another subject with an error and
// does nothing else.
func ValidSubject(subject string) bool {
	if subject == "" || subject[0] == '.' || subject[len(subject)-1] == '.' {
		return false
	}
	for i := 0; i < len(subject); i++ {
		switch ch := subject[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
		case ch == '.':
			if subject[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}
