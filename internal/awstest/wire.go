package awstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// APIError is an AWS error as the server answers it, and the error helper
// methods return for the same conditions.
type APIError struct {
	// Status is the HTTP status; zero means the code's usual status.
	Status int
	// Code is the AWS error code ("QueueDoesNotExist").
	Code string
	// Message is the human-readable text.
	Message string
	// Type, Reason and RetryAfter are Lambda's extra members; see Fault.
	Type       string
	Reason     string
	RetryAfter time.Duration
}

// Error returns "Code: Message".
func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func apiErr(code, format string, args ...any) *APIError {
	msg := format
	if len(args) > 0 {
		msg = sprintf(format, args...)
	}
	return &APIError{Code: code, Message: msg}
}

// Content types of the three protocols.
const (
	contentJSON10 = "application/x-amz-json-1.0"
	contentJSON11 = "application/x-amz-json-1.1"
	contentJSON   = "application/json"
)

// writeAPIError renders e in svc's protocol, as smithy-go's decoders read it:
// awsJson1_0/1_1 take the code from X-Amzn-Errortype or the body's "__type"
// (namespace before '#' dropped); SQS, being awsQueryCompatible, also sends
// x-amzn-query-error "<query code>;Sender|Receiver", whose code the SDK
// reports as ErrorCode() and whose half sets ErrorFault(); restJson1 (Lambda)
// takes the code from X-Amzn-Errortype and binds members from the body and
// headers (Retry-After → RetryAfterSeconds); restXml (S3) reads S3's XML
// error document (see writeS3Error).
func writeAPIError(w http.ResponseWriter, svc string, e *APIError) {
	if svc == "s3" {
		writeS3Error(w, &s3Error{APIError: *e})
		return
	}
	status := e.Status
	if status == 0 {
		status = defaultStatus(svc, e.Code)
	}
	if svc == "sns" {
		writeSNSError(w, status, e)
		return
	}
	h := w.Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", retryAfterSeconds(e.RetryAfter))
	}
	var body map[string]any
	switch svc {
	case "sqs":
		h.Set("Content-Type", contentJSON10)
		fault := "Sender"
		if status >= 500 {
			fault = "Receiver"
		}
		qc := sqsQueryCodes[e.Code]
		if qc == "" {
			qc = e.Code
		}
		h.Set("X-Amzn-Query-Error", qc+";"+fault)
		body = map[string]any{"__type": "com.amazonaws.sqs#" + e.Code, "message": e.Message}
	case "ecs", "ssm", "events":
		h.Set("Content-Type", contentJSON11)
		body = map[string]any{"__type": e.Code, "message": e.Message}
	case "kinesis":
		h.Set("Content-Type", contentJSON11)
		body = map[string]any{"__type": e.Code, "message": e.Message}
	case "states":
		h.Set("Content-Type", contentJSON10)
		body = map[string]any{"__type": "com.amazonaws.swf.service.v2.model#" + e.Code, "message": e.Message}
	default: // lambda
		h.Set("Content-Type", contentJSON)
		h.Set("X-Amzn-Errortype", e.Code)
		typ := e.Type
		if typ == "" {
			typ = "User"
			if status >= 500 {
				typ = "Service"
			}
		}
		msgKey := "message"
		if lambdaCapitalMessage[e.Code] {
			msgKey = "Message"
		}
		body = map[string]any{"Type": typ, msgKey: e.Message}
		if e.Reason != "" {
			body["Reason"] = e.Reason
		}
	}
	writeJSON(w, status, "", body)
}

// writeJSON writes v as JSON with status; an empty contentType keeps the
// header already set.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()-1))
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// decodeJSON reads an AWS JSON request body; an empty body is an empty
// object. Malformed JSON or a member of the wrong type is what AWS answers
// with SerializationException.
func decodeJSON(body []byte, v any) *APIError {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &APIError{Status: http.StatusBadRequest, Code: "SerializationException", Message: err.Error()}
	}
	return nil
}

func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// defaultStatus is the HTTP status AWS uses for code: the @httpError of the
// SDK models (sqs, lambda, ecs schemas), else 400, or 500/503 for codes that
// name a server-side failure.
func defaultStatus(svc, code string) int {
	var m map[string]int
	switch svc {
	case "sqs":
		m = sqsStatus
	case "lambda":
		m = lambdaStatus
	case "ecs":
		m = ecsStatus
	case "s3":
		m = s3Status
	case "ssm":
		m = ssmStatus
	case "sns":
		m = snsStatus
	case "kinesis":
		m = kinesisStatus
	case "events":
		m = eventsStatus
	}
	if st, ok := m[code]; ok {
		return st
	}
	switch {
	case code == "ServiceUnavailable" || code == "ServiceUnavailableException":
		return http.StatusServiceUnavailable
	case strings.HasPrefix(code, "Internal") || strings.HasSuffix(code, "ServerException") || code == "ServiceException":
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

var sqsStatus = map[string]int{
	"InvalidAddress": 404, "InvalidSecurity": 403, "KmsOptInRequired": 403, "OverLimit": 403,
	"PurgeQueueInProgress": 403, "ReceiptHandleIsInvalid": 404, "RequestThrottled": 403,
	"ResourceNotFoundException": 404, "InternalError": 500, "InternalFailure": 500,
	"MissingAuthenticationToken": 403, "AccessDenied": 403, "AccessDeniedException": 403,
}

// sqsQueryCodes are the @awsQueryError codes of the SQS model: what
// x-amzn-query-error carries and ErrorCode() returns. Codes not listed are
// sent as they are.
var sqsQueryCodes = map[string]string{
	"BatchEntryIdsNotDistinct":     "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
	"BatchRequestTooLong":          "AWS.SimpleQueueService.BatchRequestTooLong",
	"EmptyBatchRequest":            "AWS.SimpleQueueService.EmptyBatchRequest",
	"InvalidBatchEntryId":          "AWS.SimpleQueueService.InvalidBatchEntryId",
	"MessageNotInflight":           "AWS.SimpleQueueService.MessageNotInflight",
	"PurgeQueueInProgress":         "AWS.SimpleQueueService.PurgeQueueInProgress",
	"QueueDeletedRecently":         "AWS.SimpleQueueService.QueueDeletedRecently",
	"QueueDoesNotExist":            "AWS.SimpleQueueService.NonExistentQueue",
	"QueueNameExists":              "QueueAlreadyExists",
	"TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
	"UnsupportedOperation":         "AWS.SimpleQueueService.UnsupportedOperation",
	"KmsAccessDenied":              "KMS.AccessDeniedException",
	"KmsDisabled":                  "KMS.DisabledException",
	"KmsInvalidKeyUsage":           "KMS.InvalidKeyUsageException",
	"KmsInvalidState":              "KMS.InvalidStateException",
	"KmsNotFound":                  "KMS.NotFoundException",
	"KmsOptInRequired":             "KMS.OptInRequired",
	"KmsThrottled":                 "KMS.ThrottlingException",
}

var lambdaStatus = map[string]int{
	"CodeSigningConfigNotFoundException": 404, "EC2AccessDeniedException": 502,
	"EC2ThrottledException": 502, "EC2UnexpectedException": 502, "EFSIOException": 410,
	"EFSMountConnectivityException": 408, "EFSMountFailureException": 403,
	"EFSMountTimeoutException": 408, "ENILimitReachedException": 502, "ENINotReadyException": 502,
	"InvalidRuntimeException": 502, "InvalidSecurityGroupIDException": 502,
	"InvalidSubnetIDException": 502, "InvalidZipFileException": 502, "KMSAccessDeniedException": 502,
	"KMSDisabledException": 502, "KMSInvalidStateException": 502, "KMSNotFoundException": 502,
	"PreconditionFailedException": 412, "RequestTooLargeException": 413,
	"ResourceConflictException": 409, "ResourceNotFoundException": 404,
	"ResourceNotReadyException": 502, "SerializedRequestEntityTooLargeException": 413,
	"ServiceException": 500, "SnapStartNotReadyException": 409, "SnapStartTimeoutException": 408,
	"SubnetIPAddressLimitReachedException": 502, "TooManyRequestsException": 429,
	"UnsupportedMediaTypeException": 415, "MissingAuthenticationTokenException": 403,
	"UnknownOperationException": 404, "AccessDeniedException": 403,
}

// lambdaCapitalMessage lists Lambda errors whose model spells the member
// "Message"; the rest use "message". (The SDK accepts either spelling; this
// keeps the bodies as Lambda writes them.)
var lambdaCapitalMessage = map[string]bool{
	"CodeSigningConfigNotFoundException": true, "CodeVerificationFailedException": true,
	"EC2AccessDeniedException": true, "EC2ThrottledException": true, "EC2UnexpectedException": true,
	"EFSIOException": true, "EFSMountConnectivityException": true, "EFSMountFailureException": true,
	"EFSMountTimeoutException": true, "ENILimitReachedException": true, "ENINotReadyException": true,
	"InvalidCodeSignatureException": true, "InvalidRuntimeException": true,
	"InvalidSecurityGroupIDException": true, "InvalidSubnetIDException": true,
	"InvalidZipFileException": true, "KMSAccessDeniedException": true, "KMSDisabledException": true,
	"KMSInvalidStateException": true, "KMSNotFoundException": true, "RecursiveInvocationException": true,
	"ResourceNotFoundException": true, "ServiceException": true, "SubnetIPAddressLimitReachedException": true,
}

// ssmStatus: SSM's model gives InternalServerError 500; the rest are 400.
var ssmStatus = map[string]int{
	"InternalServerError": 500, "MissingAuthenticationTokenException": 403,
}

// eventsStatus: EventBridge answers its errors with 400 (its Common
// Errors), InternalException 500.
var eventsStatus = map[string]int{
	"InternalException": 500, "MissingAuthenticationTokenException": 403,
}

var ecsStatus = map[string]int{
	"AccessDeniedException": 403, "ServerException": 500, "MissingAuthenticationTokenException": 403,
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
