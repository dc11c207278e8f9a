package actors

import (
	"reflect"

	"github.com/tubfarm/tubfarm/internal/termsafe"
)

// Caps on what a server's answers may leave in Status, which lives as long
// as the server and is rendered into the status page, its JSON and logs.
const (
	// MaxFailureText bounds Status.LastFailure and the error text logged
	// for a server, in runes once escaped: text from a server has its
	// control and formatting characters escaped (internal/termsafe), and
	// longer text is cut and ends with termsafe.Marker ("…").
	MaxFailureText = 2048
	// MaxVersionText bounds Status.Version likewise.
	MaxVersionText = 256
	// MaxVersionInfo bounds the get_version answer kept in
	// Status.VersionInfo for the life of a session, in bytes as the
	// decoded value holds them (strings, slices, interfaces). A larger
	// answer is not kept (VersionInfo is nil), and its
	// "application-version" is still read.
	MaxVersionInfo = 64 << 10
)

// errorText is err's message as Status and the logs keep it: control
// and formatting characters escaped, at most MaxFailureText runes and
// termsafe.Marker.
func errorText(err error) string { return termsafe.Clip(err.Error(), MaxFailureText) }

// keepVersion returns a get_version answer if it holds at most
// MaxVersionInfo bytes, else nil.
func keepVersion(v any) any {
	budget := MaxVersionInfo
	if !within(reflect.ValueOf(v), &budget) {
		return nil
	}
	return v
}

// within charges the memory v holds against budget and reports whether it
// fits. It stops as soon as the budget is spent, so it costs O(budget)
// whatever v is, even a value whose parts are shared many times over.
func within(v reflect.Value, budget *int) bool {
	*budget -= 16
	if *budget < 0 {
		return false
	}
	switch v.Kind() {
	case reflect.String:
		*budget -= v.Len()
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			*budget -= v.Len()
			break
		}
		for i := range v.Len() {
			if !within(v.Index(i), budget) {
				return false
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if !within(it.Key(), budget) || !within(it.Value(), budget) {
				return false
			}
		}
	case reflect.Interface, reflect.Pointer:
		if !v.IsNil() {
			return within(v.Elem(), budget)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if !within(v.Field(i), budget) {
				return false
			}
		}
	}
	return *budget >= 0
}
