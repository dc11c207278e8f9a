package config

import (
	"errors"
	"strconv"
	"strings"

	"github.com/tubfarm/tubfarm/internal/nodefile"
)

// Error classes. Every error returned by this package is a *[FileError]
// whose Err wraps one of these; test with [errors.Is].
var (
	// ErrSyntax reports a file that cannot be parsed at all: an INI line
	// that is neither a section header, a "key = value" option nor a
	// comment; a YAML syntax error; invalid UTF-8.
	ErrSyntax = errors.New("syntax error")

	// ErrDuplicate reports a section, key, petname or server id defined
	// twice. Tahoe (configparser strict=False, PyYAML) silently keeps the
	// last one; this package refuses to guess.
	ErrDuplicate = errors.New("defined twice")

	// ErrUnknownKey reports a key that Tahoe-LAFS does not accept in that
	// section of tahoe.cfg.
	ErrUnknownKey = errors.New("unknown key")

	// ErrInvalidValue reports a value of the right type that is not
	// acceptable: a bad boolean, a negative timeout, an unknown handler,
	// a malformed FURL or key.
	ErrInvalidValue = errors.New("invalid value")

	// ErrType reports a YAML value of the wrong type, such as a list where
	// a mapping is required or a number where a string is required.
	ErrType = errors.New("wrong type")

	// ErrMissing reports a required field that is absent.
	ErrMissing = errors.New("missing")

	// ErrEmptyDocument reports a YAML file with no document, or a null
	// one, where Tahoe requires content.
	ErrEmptyDocument = errors.New("empty document")

	// ErrConflict reports settings that are fine alone but not together,
	// such as [i2p] sam.port with launch, or introducer "default" defined
	// both in tahoe.cfg and in introducers.yaml.
	ErrConflict = errors.New("conflicting settings")

	// ErrPrivacy reports a setting that would reveal the node's IP address
	// while [node] reveal-IP-address = false (Tahoe's PrivacyError).
	ErrPrivacy = errors.New("privacy violation (reveal-IP-address = false)")

	// ErrUnknownKeyType reports an announcement whose signature or key is
	// missing or not in the "v0-" format (Tahoe's UnknownKeyError).
	ErrUnknownKeyType = errors.New("only v0- signed announcements recognized")

	// ErrBadSignature reports an announcement whose Ed25519 signature does
	// not verify, or whose cached "ann" differs from the signed message.
	ErrBadSignature = errors.New("bad signature")

	// ErrNotRegular reports a node file that is a FIFO, a device, a
	// socket or a directory rather than a regular file.
	ErrNotRegular = nodefile.ErrNotRegular

	// ErrTooLarge reports a node file larger than [MaxFileSize], or a
	// tahoe.cfg value whose interpolation expands beyond
	// maxInterpolatedSize.
	ErrTooLarge = nodefile.ErrTooLarge
)

// A FileError describes a problem in one node-directory file. It always
// names the file and, where known, the line (1-based; 0 when the problem
// concerns the whole file), the INI section and the field.
//
// For tahoe.cfg, Section is the section name and Field the lower-cased
// key. For YAML files, Section is empty and Field is a dotted path such as
// "storage.v0-abc….connections.tcp".
type FileError struct {
	Path    string
	Line    int
	Section string
	Field   string
	Err     error
}

// Error formats the error as
// "config: PATH:LINE: [SECTION] FIELD: message".
func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(e.Path)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Section != "" {
		b.WriteString("[" + e.Section + "] ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns e.Err.
func (e *FileError) Unwrap() error { return e.Err }

// classError is an error with its own message that also matches a class
// sentinel (and optionally a cause) under errors.Is/As.
type classError struct {
	class error
	msg   string
	cause error
}

func (e *classError) Error() string { return e.msg }

func (e *classError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.class}
	}
	return []error{e.class, e.cause}
}

// classErr returns an error with message msg that matches class.
func classErr(class error, msg string) error { return &classError{class: class, msg: msg} }

// wrapClass returns an error with message msg + ": " + cause that matches
// both class and cause.
func wrapClass(class error, msg string, cause error) error {
	if msg == "" {
		msg = cause.Error()
	} else {
		msg += ": " + cause.Error()
	}
	return &classError{class: class, msg: msg, cause: cause}
}

func quote(s string) string { return strconv.Quote(s) }

func itoa(i int) string { return strconv.Itoa(i) }
