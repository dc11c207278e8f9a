package config

import (
	"fmt"

	"github.com/tubfarm/tubfarm/hints"
)

// FieldNURLs is the announcement field listing a server's HTTPS storage
// NURLs (Tahoe 1.19 and later).
const FieldNURLs = "anonymous-storage-NURLs"

// MaxNURLs is the most NURLs of one announcement that are kept; Tahoe
// announces one per tcp: or tor: location hint.
const MaxNURLs = 16

// NURLs parses the announcement's anonymous-storage-NURLs. It returns the
// NURLs that parse, in order and without duplicates, and an error for each
// one that does not (or for a field that is not a list of strings). A bad
// NURL never makes the announcement unusable: the server keeps its FURL
// and its other NURLs.
func (a Announcement) NURLs() ([]hints.NURL, []error) {
	v, ok := a.fields[FieldNURLs]
	if !ok {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, []error{&fieldError{FieldNURLs, classErr(ErrType, "must be a list, not "+typeName(v))}}
	}
	var out []hints.NURL
	var errs []error
	seen := map[string]bool{}
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			errs = append(errs, &fieldError{fmt.Sprintf("%s[%d]", FieldNURLs, i), classErr(ErrType, "must be a string, not "+typeName(x))})
			continue
		}
		n, err := hints.ParseNURL(s)
		if err != nil {
			errs = append(errs, &fieldError{fmt.Sprintf("%s[%d]", FieldNURLs, i), wrapClass(ErrInvalidValue, "", err)})
			continue
		}
		if seen[n.String()] {
			continue
		}
		if len(out) == MaxNURLs {
			errs = append(errs, &fieldError{fmt.Sprintf("%s[%d]", FieldNURLs, i), classErr(ErrInvalidValue, fmt.Sprintf("more than %d NURLs; the rest are ignored", MaxNURLs))})
			break
		}
		seen[n.String()] = true
		out = append(out, n)
	}
	return out, errs
}
