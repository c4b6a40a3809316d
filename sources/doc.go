// Package sources holds switchyard's event sources, one package per kind:
// sqs, http, ecs and nats. Each turns what it receives into router.Messages
// (an Event plus a handle to ack or nack the original) and never buffers
// more than the dispatcher asked for. A kind's Config, next to its code, is
// its section of the config file.
package sources
