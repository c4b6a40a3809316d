// Package awstest serves wire-level AWS endpoints for switchyard's tests and load
// tests: SQS (AWS JSON 1.0), Lambda Invoke (REST-JSON), ECS RunTask,
// DescribeTasks, ListTasks and StopTask (AWS JSON 1.1), S3 GetObject
// (REST-XML), SSM GetParameter (AWS JSON 1.1), SNS Publish (awsQuery),
// Kinesis PutRecords (AWS JSON 1.1), Step Functions StartExecution,
// StartSyncExecution and DescribeExecution (AWS JSON 1.0) and EventBridge
// PutEvents (AWS JSON 1.1), all from one [net/http.Handler] on one loopback
// URL.
//
// The point is fidelity. Code under test talks to a [Server] through the real
// aws-sdk-go-v2 clients with BaseEndpoint pointed at [Server.URL], so request
// serialisation, response deserialisation, the SDK's MD5 checks on SQS message
// bodies and its error decoding all run as they do against AWS. Errors are
// written the way each protocol's decoder in github.com/aws/smithy-go reads
// them, so they surface as the SDK's typed errors (for example
// *sqstypes.QueueDoesNotExist, *lambdatypes.TooManyRequestsException with
// RetryAfterSeconds, *ecstypes.ClusterNotFoundException) or as a
// smithy.APIError whose ErrorCode() is what AWS would send.
//
// Behaviour follows the AWS API references: SQS long polling, visibility
// timeouts, receive counts, redrive to a dead-letter queue, FIFO ordering,
// group locking and deduplication, batch limits; Lambda invocation types,
// function errors, payload limits and reserved-concurrency throttling; ECS
// task lifecycles, client-token idempotency and failures[]; Step Functions
// execution-name idempotency of standard workflows, and express workflows
// run synchronously; EventBridge's entry validation, size limits and
// per-entry results. Where AWS's documentation leaves a choice open, the
// choice is written on the method that makes it.
//
// Time comes from a [Clock]: real time by default, or a [ManualClock] that a
// test advances, so visibility timeouts, delays, long-poll deadlines and
// injected latency are deterministic.
//
// Faults are scripted per operation and resource ([Server.InjectFault],
// [Server.FailNext], [Server.SetHook]) and rendered in each protocol's error
// shape; [Server.Calls] and [Server.Stats] count what arrived.
//
// Operation names throughout are "service:Operation", as in IAM actions:
// "sqs:ReceiveMessage", "lambda:Invoke", "ecs:RunTask", "s3:GetObject",
// "ssm:GetParameter", "states:StartExecution", "events:PutEvents".
//
// The package is for tests and load tests only (see awstestd for a
// standalone server); it listens on loopback and checks no signatures.
package awstest
