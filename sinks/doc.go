// Package sinks holds switchyard's delivery targets, one package per kind:
// lambda, ecstask, stepfunctions, http, nats, sqs and log. Each performs
// one delivery (or one batch) and classifies its failures as retryable,
// throttled or permanent. A kind's Config, next to its code, is its
// section of the config file.
package sinks
