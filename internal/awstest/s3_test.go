package awstest_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func s3Server(t *testing.T) *awstest.Server {
	t.Helper()
	s, _ := newServer(t)
	s.S3().CreateBucket("configs", "")
	if err := s.S3().PutObject("configs", "prod/switchyard.yaml", []byte("version: 1\n"), "application/yaml"); err != nil {
		t.Fatal(err)
	}
	return s
}

func getObject(t *testing.T, c *s3.Client, bucket, key string) (string, error) {
	t.Helper()
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

func TestS3_GetObjectPathStyle(t *testing.T) {
	t.Parallel()
	s := s3Server(t)
	var paths []string
	s.SetHook(func(op string, r *http.Request) *awstest.Fault {
		paths = append(paths, r.Host+r.URL.Path)
		return nil
	})
	// As LoadDefaultConfig sets it: the SDK asks for the checksum.
	c := s.S3Client(func(o *s3.Options) { o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported })
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("configs"), Key: aws.String("prod/switchyard.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(out.Body) // the SDK checks the CRC64NVME checksum as it reads
	out.Body.Close()
	if err != nil || string(body) != "version: 1\n" {
		t.Fatalf("body %q, %v", body, err)
	}
	if aws.ToString(out.ContentType) != "application/yaml" || aws.ToInt64(out.ContentLength) != 11 || aws.ToString(out.ETag) == "" || out.LastModified == nil {
		t.Errorf("metadata: type %q, length %d, etag %q, modified %v", aws.ToString(out.ContentType), aws.ToInt64(out.ContentLength), aws.ToString(out.ETag), out.LastModified)
	}
	if aws.ToString(out.ChecksumCRC64NVME) == "" {
		t.Error("no CRC64NVME checksum returned although the SDK asked for it")
	}
	if len(paths) != 1 || !strings.HasPrefix(paths[0], "127.0.0.1:") || !strings.HasSuffix(paths[0], "/configs/prod/switchyard.yaml") {
		t.Errorf("requests: %q, want one path-style request", paths)
	}
	if got := s.Calls("s3:GetObject"); got != 1 {
		t.Errorf("s3:GetObject calls = %d", got)
	}
}

// TestS3_GetObjectVirtualHosted points the client at a host name, so the SDK
// puts the bucket in the host; the dialer sends every host to the server.
func TestS3_GetObjectVirtualHosted(t *testing.T) {
	t.Parallel()
	s := s3Server(t)
	addr := strings.TrimPrefix(s.URL(), "http://")
	_, port, _ := net.SplitHostPort(addr)
	var hosts []string
	s.SetHook(func(op string, r *http.Request) *awstest.Fault {
		hosts = append(hosts, r.Host+" "+r.URL.Path)
		return nil
	})
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.Proxy = nil
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}
	})
	t.Cleanup(func() { hc.GetTransport().CloseIdleConnections() })
	for _, pathStyle := range []bool{false, true} {
		hosts = nil
		c := s.S3Client(func(o *s3.Options) {
			o.BaseEndpoint = aws.String("http://s3.localhost:" + port)
			o.HTTPClient = hc
			o.UsePathStyle = pathStyle
		})
		got, err := getObject(t, c, "configs", "prod/switchyard.yaml")
		if err != nil || got != "version: 1\n" {
			t.Fatalf("path style %v: %q, %v", pathStyle, got, err)
		}
		want := "configs.s3.localhost:" + port + " /prod/switchyard.yaml"
		if pathStyle {
			want = "s3.localhost:" + port + " /configs/prod/switchyard.yaml"
		}
		if len(hosts) != 1 || hosts[0] != want {
			t.Errorf("path style %v: requests %q, want %q", pathStyle, hosts, want)
		}
	}
}

func TestS3_Errors(t *testing.T) {
	t.Parallel()
	s := s3Server(t)
	s.S3().CreateBucket("eu-configs", "eu-west-1")
	c := s.S3Client()

	_, err := getObject(t, c, "configs", "nope.yaml")
	var nsk *s3types.NoSuchKey
	if !errors.As(err, &nsk) {
		t.Errorf("missing key: %v, want *types.NoSuchKey", err)
	}
	if status := httpStatus(t, err); status != http.StatusNotFound {
		t.Errorf("missing key: status %d", status)
	}

	_, err = getObject(t, c, "no-such-bucket", "x")
	if code, status := apiCode(t, err), httpStatus(t, err); code != "NoSuchBucket" || status != 404 {
		t.Errorf("missing bucket: %s %d (%v)", code, status, err)
	}

	_, err = getObject(t, c, "eu-configs", "x")
	if code, status := apiCode(t, err), httpStatus(t, err); code != "PermanentRedirect" || status != http.StatusMovedPermanently {
		t.Errorf("wrong region: %s %d (%v)", code, status, err)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.Response.Header.Get("X-Amz-Bucket-Region") != "eu-west-1" {
		t.Errorf("wrong region: no x-amz-bucket-region eu-west-1 in %v", err)
	}
	euClient := s.S3Client(func(o *s3.Options) { o.Region = "eu-west-1" })
	if _, err := getObject(t, euClient, "eu-configs", "x"); apiCode(t, err) != "NoSuchKey" {
		t.Errorf("right region: %v, want NoSuchKey", err)
	}

	s.FailNext("s3:GetObject", 1, awstest.Fault{Code: "AccessDenied", Message: "Access Denied"})
	_, err = getObject(t, c, "configs", "prod/switchyard.yaml")
	if code, status := apiCode(t, err), httpStatus(t, err); code != "AccessDenied" || status != http.StatusForbidden {
		t.Errorf("access denied: %s %d (%v)", code, status, err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorMessage() != "Access Denied" {
		t.Errorf("access denied: message %q", ae.ErrorMessage())
	}

	s.InjectFault(awstest.FaultRule{Op: "s3:GetObject", Resource: "configs", Times: 1, Fault: awstest.SlowDown()})
	_, err = getObject(t, c, "configs", "prod/switchyard.yaml")
	if code, status := apiCode(t, err), httpStatus(t, err); code != "SlowDown" || status != http.StatusServiceUnavailable {
		t.Errorf("slow down: %s %d (%v)", code, status, err)
	}

	// The SDK's standard retryer takes SlowDown for a throttle and retries.
	s.FailNext("s3:GetObject", 1, awstest.SlowDown())
	retrying := s.S3Client(func(o *s3.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 2
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	})
	before := s.Calls("s3:GetObject")
	if got, err := getObject(t, retrying, "configs", "prod/switchyard.yaml"); err != nil || got != "version: 1\n" {
		t.Errorf("retried slow down: %q, %v", got, err)
	}
	if n := s.Calls("s3:GetObject") - before; n != 2 {
		t.Errorf("retried slow down: %d calls, want 2", n)
	}
}

func TestS3_Unsigned(t *testing.T) {
	t.Parallel()
	s := s3Server(t)
	resp, err := http.Get(s.URL() + "/configs/prod/switchyard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "<Code>AccessDenied</Code>") {
		t.Errorf("unsigned: %d %s", resp.StatusCode, body)
	}
	http.DefaultClient.CloseIdleConnections()
}
