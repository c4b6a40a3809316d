package awstest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SSM parameter types.
const (
	ParamString       = "String"
	ParamStringList   = "StringList"
	ParamSecureString = "SecureString"
)

// SSMParameter is a parameter in Parameter Store, put in place by
// SSM.PutParameter (PutParameter is not served on the wire).
type SSMParameter struct {
	// Name is the parameter's name: "name", or a path "/a/b" (which must
	// start with a slash).
	Name string
	// Type is ParamString (the default), ParamStringList or ParamSecureString.
	Type string
	// Value is the plain value.
	Value string
}

// SSM is the Systems Manager endpoint: GetParameter (AWS JSON 1.1,
// X-Amz-Target AmazonSSM.GetParameter), enough to fetch a value the way
// switchyard fetches its config.
//
// Choices where the API reference leaves room:
//   - Name may be a name, a path or a parameter ARN
//     (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME). The ARN of "/a/b" is
//     ".../parameter/a/b", the same as an ARN of "a/b" would be; since names
//     with a slash must start with one, ".../parameter/X" is looked up as X,
//     then as /X. The answer's Name is the parameter's name.
//   - A selector (NAME:VERSION) is served for the current version only;
//     older versions and labels answer ParameterVersionNotFound (only the
//     latest version is kept).
//   - A SecureString read without WithDecryption returns, as AWS does, not
//     the value but an opaque base64 string (AWS's is the KMS ciphertext).
//   - A missing parameter is ParameterNotFound with an empty message, as
//     SSM sends it.
type SSM struct {
	s *Server

	mu     sync.Mutex
	params map[string]*ssmParam
}

type ssmParam struct {
	SSMParameter
	version  int64
	modified time.Time
}

func newSSM(s *Server) *SSM {
	return &SSM{s: s, params: map[string]*ssmParam{}}
}

// PutParameter stores p, replacing a parameter of the same name and
// incrementing its version (the first is version 1).
func (m *SSM) PutParameter(p SSMParameter) {
	if p.Type == "" {
		p.Type = ParamString
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v := int64(1)
	if old, ok := m.params[p.Name]; ok {
		v = old.version + 1
	}
	m.params[p.Name] = &ssmParam{SSMParameter: p, version: v, modified: m.s.clock.Now()}
}

// DeleteParameter removes a parameter; a missing one is no error.
func (m *SSM) DeleteParameter(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.params, name)
}

// ssmName splits a GetParameter Name (name, path or ARN, with an optional
// :selector) into the candidate names and the selector.
func ssmName(name string) (candidates []string, selector string) {
	if strings.HasPrefix(name, "arn:") {
		// arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME[:SELECTOR]
		parts := strings.SplitN(name, ":", 7)
		if len(parts) < 6 {
			return nil, ""
		}
		res, ok := strings.CutPrefix(parts[5], "parameter/")
		if !ok || parts[2] != "ssm" {
			return nil, ""
		}
		if len(parts) == 7 {
			selector = parts[6]
		}
		return []string{res, "/" + res}, selector
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		name, selector = name[:i], name[i+1:]
	}
	return []string{name}, selector
}

// ssmResource names the parameter a request is about, for fault matching:
// the Name as sent, without a selector, an ARN reduced to its name.
func ssmResource(body []byte) string {
	var in struct {
		Name string `json:"Name"`
	}
	_ = json.Unmarshal(body, &in)
	c, _ := ssmName(in.Name)
	if len(c) == 0 {
		return in.Name
	}
	if len(c) == 2 && strings.Contains(c[0], "/") {
		return c[1] // an ARN of a path
	}
	return c[0]
}

func (m *SSM) serve(w http.ResponseWriter, c *call) {
	var out any
	var err *APIError
	switch c.op {
	case "GetParameter":
		out, err = m.getParameter(c)
	default:
		err = apiErr("UnknownOperationException", "awstest: SSM operation %q is not implemented", c.op)
	}
	if err != nil {
		writeAPIError(w, "ssm", err)
		return
	}
	writeJSON(w, http.StatusOK, contentJSON11, out)
}

type ssmParameterOut struct {
	ARN              string  `json:"ARN"`
	DataType         string  `json:"DataType"`
	LastModifiedDate float64 `json:"LastModifiedDate"`
	Name             string  `json:"Name"`
	Selector         string  `json:"Selector,omitempty"`
	Type             string  `json:"Type"`
	Value            string  `json:"Value"`
	Version          int64   `json:"Version"`
}

func (m *SSM) getParameter(c *call) (any, *APIError) {
	var in struct {
		Name           *string `json:"Name"`
		WithDecryption *bool   `json:"WithDecryption"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return nil, err
	}
	if in.Name == nil {
		return nil, apiErr("ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	if n := len(*in.Name); n < 1 || n > 2048 {
		return nil, apiErr("ValidationException", "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length between 1 and 2048")
	}
	candidates, selector := ssmName(*in.Name)
	m.mu.Lock()
	var p *ssmParam
	for _, name := range candidates {
		if p = m.params[name]; p != nil {
			break
		}
	}
	var cp ssmParam
	if p != nil {
		cp = *p
	}
	m.mu.Unlock()
	if p == nil {
		return nil, &APIError{Code: "ParameterNotFound"}
	}
	if selector != "" && selector != strconv.FormatInt(cp.version, 10) {
		return nil, apiErr("ParameterVersionNotFound", "Systems Manager could not find version %s of %s. Verify the version and try again.", selector, cp.Name)
	}
	value := cp.Value
	if cp.Type == ParamSecureString && (in.WithDecryption == nil || !*in.WithDecryption) {
		sum := sha256.Sum256([]byte(cp.Name + "\x00" + cp.Value))
		value = base64.StdEncoding.EncodeToString(append([]byte("AQICAH"), sum[:]...))
	}
	out := ssmParameterOut{
		ARN:              "arn:aws:ssm:" + m.s.region + ":" + m.s.account + ":parameter/" + strings.TrimPrefix(cp.Name, "/"),
		DataType:         "text",
		LastModifiedDate: float64(cp.modified.UnixMilli()) / 1000,
		Name:             cp.Name,
		Type:             cp.Type,
		Value:            value,
		Version:          cp.version,
	}
	if selector != "" {
		out.Selector = ":" + selector
	}
	return map[string]any{"Parameter": out}, nil
}
