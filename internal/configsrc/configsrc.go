// Package configsrc fetches the text of switchyard's config from where it
// is delivered: a file, the SWITCHYARD_CONFIG_YAML environment variable, an
// S3 object (s3://BUCKET/KEY) or an SSM parameter (ssm:NAME, ssm:/PATH, or
// the parameter's ARN). It returns the text and the name that config errors
// are reported under; internal/config parses it.
//
// S3 and SSM are reached with aws-sdk-go-v2's default chain: credentials,
// region (AWS_REGION, the profile, instance or task metadata) and endpoints
// (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SSM, AWS_ENDPOINT_URL). The config
// file's own aws settings cannot apply: they are inside what is fetched.
package configsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/switchyard-dev/switchyard/internal/bodycopy"
	"github.com/switchyard-dev/switchyard/internal/redact"
)

// Where the config is looked for when no -c flag is given.
const (
	// EnvRef names a file or URI holding the config.
	EnvRef = "SWITCHYARD_CONFIG"
	// EnvYAML holds the config itself.
	EnvYAML = "SWITCHYARD_CONFIG_YAML"
	// YAMLName is what errors in a config from EnvYAML are reported under.
	YAMLName = "$" + EnvYAML
	// DefaultFile is read when neither variable is set.
	DefaultFile = "switchyard.yaml"
)

// MaxSize is the largest config accepted from any source, 1 MiB: far above
// any real config (and SSM's 8 KiB parameter limit), low enough that a
// wrong object or variable is refused before it is parsed.
const MaxSize = 1 << 20

// Timeout bounds fetching from S3 or SSM, retries and credentials included.
var Timeout = 20 * time.Second

// Conditions callers may branch on; errors wrap one of them where it applies.
var (
	ErrAmbiguous    = errors.New("ambiguous config")
	ErrNotFound     = errors.New("not found")
	ErrAccessDenied = errors.New("access denied")
	ErrThrottled    = errors.New("throttled")
	ErrUnreachable  = errors.New("unreachable")
	ErrTooLarge     = errors.New("too large")
)

// Load finds the config and reads it. The first that is given wins: ref
// (the -c flag), $SWITCHYARD_CONFIG (a file or URI), $SWITCHYARD_CONFIG_YAML
// (the config itself), ./switchyard.yaml. An empty SWITCHYARD_CONFIG counts
// as unset; SWITCHYARD_CONFIG_YAML counts as given even when empty (an empty
// secret is then reported as an empty config, not replaced by a file).
// Both variables given without ref is ErrAmbiguous: each alone is a
// complete instruction, and picking one would silently ignore the other.
// lookup reads the environment (nil: the process's).
func Load(ctx context.Context, ref string, lookup func(string) (string, bool)) (name string, data []byte, err error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if ref != "" {
		return Read(ctx, ref)
	}
	envRef, _ := lookup(EnvRef)
	yaml, yamlSet := lookup(EnvYAML)
	switch {
	case envRef != "" && yamlSet:
		return "", nil, fmt.Errorf("%w: both %s (%s) and %s are set; unset one, or name the config with -c", ErrAmbiguous, EnvRef, envRef, EnvYAML)
	case envRef != "":
		return Read(ctx, envRef)
	case yamlSet:
		if len(yaml) > MaxSize {
			return "", nil, fmt.Errorf("%s: %w: %d bytes; a config is at most %s", YAMLName, ErrTooLarge, len(yaml), sizeText(MaxSize))
		}
		return YAMLName, []byte(yaml), nil
	}
	return Read(ctx, DefaultFile)
}

// Read reads the config at ref: s3://BUCKET/KEY, ssm:NAME, ssm:/PATH,
// arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME, or a file path. name is
// ref as given, with any user info and query values in it shown as xxxxx
// (it is logged and shown in /status). Every call fetches anew.
func Read(ctx context.Context, ref string) (name string, data []byte, err error) {
	switch {
	case strings.HasPrefix(ref, "s3://"):
		data, err = readS3(ctx, ref)
	case strings.HasPrefix(ref, "ssm:"), isSSMARN(ref):
		data, err = readSSM(ctx, ref)
	default:
		data, err = readFile(ref)
	}
	if err != nil {
		return "", nil, err
	}
	return redact.URL(ref), data, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: %w: over %s; a config is at most %s", path, ErrTooLarge, sizeText(MaxSize), sizeText(MaxSize))
	}
	return data, nil
}

func isSSMARN(ref string) bool {
	p := strings.SplitN(ref, ":", 6)
	return len(p) == 6 && p[0] == "arn" && p[2] == "ssm" && strings.HasPrefix(p[5], "parameter/")
}

// awsConfig loads the SDK's default config. Its HTTP client keeps no idle
// connections: a fetch is one call (and its retries), made again only on a
// reload, so nothing is left open between them.
func awsConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws: %w", err)
	}
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		cfg.HTTPClient = bc.WithTransportOptions(func(tr *http.Transport) { tr.DisableKeepAlives = true })
	}
	// Copies of request bodies: see internal/bodycopy.
	cfg.HTTPClient = bodycopy.Client(cfg.HTTPClient)
	return cfg, nil
}

// S3

// parseS3 splits s3://BUCKET/KEY.
func parseS3(ref string) (bucket, key string, err error) {
	bucket, key, _ = strings.Cut(strings.TrimPrefix(ref, "s3://"), "/")
	if bucket == "" || key == "" || strings.HasSuffix(key, "/") {
		return "", "", fmt.Errorf("%s: want s3://BUCKET/KEY, the key of one object", ref)
	}
	return bucket, key, nil
}

func readS3(ctx context.Context, ref string) ([]byte, error) {
	bucket, key, err := parseS3(ref)
	if err != nil {
		return nil, err
	}
	ctx, cancel, budget := withTimeout(ctx)
	defer cancel()
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if cfg.Region == "" {
		// S3 answers a request signed for another region with the bucket's
		// region, which the retry below follows.
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// Objects stored without a checksum, and redirects, would have the
		// SDK print a line on stderr outside the daemon's logs.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	data, err := getObject(ctx, client, bucket, key, nil)
	if region := bucketRegion(err); region != "" && region != cfg.Region {
		// The bucket is elsewhere: ask again in its region, once.
		data, err = getObject(ctx, client, bucket, key, func(o *s3.Options) { o.Region = region })
		if err == nil {
			return data, nil
		}
	}
	if err != nil {
		return nil, s3Error(ctx, budget, ref, bucket, key, cfg.Region, err)
	}
	return data, nil
}

func getObject(ctx context.Context, c *s3.Client, bucket, key string, opt func(*s3.Options)) ([]byte, error) {
	var opts []func(*s3.Options)
	if opt != nil {
		opts = append(opts, opt)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, opts...)
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	if n := aws.ToInt64(out.ContentLength); n > MaxSize {
		return nil, fmt.Errorf("%w: the object is %s; a config is at most %s", ErrTooLarge, sizeText(n), sizeText(MaxSize))
	}
	data, err := io.ReadAll(io.LimitReader(out.Body, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the object: %w", err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: the object is over %s; a config is at most %s", ErrTooLarge, sizeText(MaxSize), sizeText(MaxSize))
	}
	return data, nil
}

// bucketRegion is the x-amz-bucket-region S3 sends with the answers to
// requests that reached a bucket in another region (301 PermanentRedirect,
// 400 AuthorizationHeaderMalformed), or "".
func bucketRegion(err error) string {
	var re *awshttp.ResponseError
	if err == nil || !errors.As(err, &re) || re.Response == nil {
		return ""
	}
	return re.Response.Header.Get("X-Amz-Bucket-Region")
}

func s3Error(ctx context.Context, budget time.Duration, ref, bucket, key, region string, err error) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("%s: %w", ref, err)
	}
	code, msg := apiError(err)
	switch code {
	case "NoSuchKey":
		return fmt.Errorf("%s: %w: bucket %s has no key %q", ref, ErrNotFound, bucket, key)
	case "NoSuchBucket":
		return fmt.Errorf("%s: %w: no bucket %s", ref, ErrNotFound, bucket)
	case "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return fmt.Errorf("%s: %w (%s: %s): the caller needs s3:GetObject on arn:aws:s3:::%s/%s, and kms:Decrypt if the object is encrypted with a KMS key; S3 also answers this for a missing key when the caller may not s3:ListBucket the bucket", ref, ErrAccessDenied, code, msg, bucket, key)
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
		if r := bucketRegion(err); r != "" {
			return fmt.Errorf("%s: the bucket is in %s, and asking there failed too: %w", ref, r, err)
		}
		return fmt.Errorf("%s: the bucket is not in %s (%s): set AWS_REGION to the bucket's region", ref, region, code)
	case "SlowDown", "ThrottlingException", "RequestThrottled", "TooManyRequestsException":
		return fmt.Errorf("%s: %w: S3 answered %s, still after the SDK's retries", ref, ErrThrottled, code)
	}
	return fetchError(ctx, budget, ref, "S3", err)
}

// SSM

func readSSM(ctx context.Context, ref string) ([]byte, error) {
	name := strings.TrimPrefix(ref, "ssm:")
	if name == "" {
		return nil, fmt.Errorf("%s: want ssm:NAME, ssm:/PATH or a parameter ARN", ref)
	}
	ctx, cancel, budget := withTimeout(ctx)
	defer cancel()
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if isSSMARN(name) {
		cfg.Region = strings.Split(name, ":")[3] // the parameter's own
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("%s: no AWS region: set AWS_REGION, or name the parameter by its ARN", ref)
	}
	out, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil, ssmError(ctx, budget, ref, name, cfg.Region, err)
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return nil, fmt.Errorf("%s: SSM answered no value", ref)
	}
	v := *out.Parameter.Value
	if len(v) > MaxSize {
		return nil, fmt.Errorf("%s: %w: the value is %s; a config is at most %s", ref, ErrTooLarge, sizeText(int64(len(v))), sizeText(MaxSize))
	}
	return []byte(v), nil
}

func ssmError(ctx context.Context, budget time.Duration, ref, name, region string, err error) error {
	code, msg := apiError(err)
	switch code {
	case "ParameterNotFound", "ParameterVersionNotFound":
		return fmt.Errorf("%s: %w: no parameter %s in %s", ref, ErrNotFound, name, region)
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException":
		return fmt.Errorf("%s: %w (%s: %s): the caller needs ssm:GetParameter on the parameter, and kms:Decrypt on its key for a SecureString", ref, ErrAccessDenied, code, msg)
	case "ThrottlingException", "TooManyUpdates":
		return fmt.Errorf("%s: %w: SSM answered %s, still after the SDK's retries", ref, ErrThrottled, code)
	}
	return fetchError(ctx, budget, ref, "SSM", err)
}

// withTimeout bounds ctx by Timeout, and returns the time that leaves
// (less when ctx ends sooner), for messages.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc, time.Duration) {
	budget := Timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < budget {
		// A moment has passed since the caller set it: 300ms, not 299ms.
		budget = time.Until(dl).Round(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	return ctx, cancel, budget
}

// fetchError describes what is left: no answer within budget, no
// connection, or another AWS error.
func fetchError(ctx context.Context, budget time.Duration, ref, svc string, err error) error {
	var rse *smithyhttp.RequestSendError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: %w: no answer from %s within %s: %w", ref, ErrUnreachable, svc, budget, err)
	case errors.As(err, &rse):
		return fmt.Errorf("%s: %w: cannot reach %s (AWS_ENDPOINT_URL_%s overrides its endpoint): %w", ref, ErrUnreachable, svc, strings.ToUpper(svc), rse.Err)
	}
	return fmt.Errorf("%s: %w", ref, err)
}

// apiError returns an AWS error's code and message, or "".
func apiError(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", ""
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}
