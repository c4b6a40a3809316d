package awstest_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func TestSSM_GetParameter(t *testing.T) {
	t.Parallel()
	s, clk := newServer(t)
	s.SSM().PutParameter(awstest.SSMParameter{Name: "/switchyard/prod", Value: "version: 1\n"})
	s.SSM().PutParameter(awstest.SSMParameter{Name: "plain", Type: awstest.ParamSecureString, Value: "s3cret"})
	s.SSM().PutParameter(awstest.SSMParameter{Name: "plain", Type: awstest.ParamSecureString, Value: "s3cret-2"})
	c := s.SSMClient()

	for _, name := range []string{"/switchyard/prod", "arn:aws:ssm:us-east-1:123456789012:parameter/switchyard/prod"} {
		out, err := c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String(name)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := out.Parameter
		if aws.ToString(p.Value) != "version: 1\n" || aws.ToString(p.Name) != "/switchyard/prod" || p.Type != ssmtypes.ParameterTypeString || p.Version != 1 ||
			aws.ToString(p.ARN) != "arn:aws:ssm:us-east-1:123456789012:parameter/switchyard/prod" || aws.ToString(p.DataType) != "text" ||
			p.LastModifiedDate == nil || !p.LastModifiedDate.Equal(clk.Now()) {
			t.Errorf("%s: %+v", name, p)
		}
	}

	out, err := c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String("plain"), WithDecryption: aws.Bool(true)})
	if err != nil || aws.ToString(out.Parameter.Value) != "s3cret-2" || out.Parameter.Type != ssmtypes.ParameterTypeSecureString || out.Parameter.Version != 2 {
		t.Fatalf("decrypted: %+v, %v", out, err)
	}
	out, err = c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String("plain")})
	if err != nil || strings.Contains(aws.ToString(out.Parameter.Value), "s3cret") || aws.ToString(out.Parameter.Value) == "" {
		t.Errorf("without decryption: %+v, %v (want an opaque ciphertext)", out.Parameter, err)
	}
	out, err = c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String("plain:2"), WithDecryption: aws.Bool(true)})
	if err != nil || aws.ToString(out.Parameter.Selector) != ":2" || aws.ToString(out.Parameter.Value) != "s3cret-2" {
		t.Errorf("selector :2: %+v, %v", out, err)
	}
	_, err = c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String("plain:1")})
	if code := apiCode(t, err); code != "ParameterVersionNotFound" {
		t.Errorf("old version: %s", code)
	}
}

func TestSSM_Errors(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t)
	s.SSM().PutParameter(awstest.SSMParameter{Name: "/switchyard/prod", Value: "version: 1\n"})
	c := s.SSMClient()

	_, err := c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String("/nope")})
	var pnf *ssmtypes.ParameterNotFound
	if !errors.As(err, &pnf) || httpStatus(t, err) != http.StatusBadRequest {
		t.Errorf("missing: %v, want *types.ParameterNotFound", err)
	}

	s.InjectFault(awstest.FaultRule{Op: "ssm:GetParameter", Resource: "/switchyard/prod", Times: 1,
		Fault: awstest.Fault{Code: "AccessDeniedException", Message: "User is not authorized to perform: ssm:GetParameter"}})
	// The ARN is reduced to the name the fault names.
	_, err = c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String("arn:aws:ssm:us-east-1:123456789012:parameter/switchyard/prod")})
	if code, status := apiCode(t, err), httpStatus(t, err); code != "AccessDeniedException" || status != http.StatusBadRequest {
		t.Errorf("access denied: %s %d", code, status)
	}

	s.FailNext("ssm:GetParameter", 1, awstest.Throttled())
	_, err = c.GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String("/switchyard/prod")})
	if code := apiCode(t, err); code != "ThrottlingException" {
		t.Errorf("throttled: %s", code)
	}
	if got := s.Calls("ssm:GetParameter"); got != 3 {
		t.Errorf("ssm:GetParameter calls = %d, want 3", got)
	}

	_, err = c.GetParameter(t.Context(), &ssm.GetParameterInput{})
	if err == nil {
		t.Error("no name: no error") // the SDK's validator refuses it before sending
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/", strings.NewReader(`{}`))
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"__type":"ValidationException"`) {
		t.Errorf("no name on the wire: %d %s", resp.StatusCode, body)
	}
}
