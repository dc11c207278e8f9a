// Package messages holds the plain values that cross actor boundaries in
// tubfarm: the server specifications the broker is asked to connect to, the
// connection [State] of a server, and the [StateChanged] events the broker
// publishes.
//
// The package has no behaviour beyond formatting and no dependencies outside
// the standard library, so that any package (configuration loaders, the
// broker, user interfaces) can import it without cycles, in the way grpc-go
// keeps connectivity.State in a leaf package. Every type documents who sends
// it and who receives it. Values are immutable once sent: a receiver must not
// modify a value it was given, and a sender must not modify a value after
// sending it.
package messages
