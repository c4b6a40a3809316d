package importer

import "strings"

// arn is an ARN taken apart: arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE.
type arn struct {
	Partition, Service, Region, Account, Resource string
}

// parseARN takes apart an ARN; the resource may hold ':' and '/'.
func parseARN(s string) (arn, bool) {
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || f[0] != "arn" || !strings.HasPrefix(f[1], "aws") || f[2] == "" {
		return arn{}, false
	}
	return arn{Partition: f[1], Service: f[2], Region: f[3], Account: f[4], Resource: f[5]}, true
}

// arnFields cuts an ARN text at its first five ':' in literal runs, so
// that its region and account can be reused with their references (an ARN
// built by !Sub from ${AWS::Region} keeps reading AWS_REGION). ok is false
// when a reference stands for more than one field (a whole ARN read from
// the environment).
func arnFields(t text) (fields []text, ok bool) {
	fields = []text{nil}
	for _, s := range t {
		if s.ref != nil || len(fields) == 6 {
			if s.ref != nil && len(fields) < 6 && strings.Count(s.ref.Default, ":") > 0 {
				return nil, false
			}
			fields[len(fields)-1] = join(fields[len(fields)-1], text{s})
			continue
		}
		rest := s.lit
		for len(fields) < 6 {
			i := strings.IndexByte(rest, ':')
			if i < 0 {
				break
			}
			fields[len(fields)-1] = join(fields[len(fields)-1], lit(rest[:i]))
			fields = append(fields, nil)
			rest = rest[i+1:]
		}
		fields[len(fields)-1] = join(fields[len(fields)-1], lit(rest))
	}
	return fields, len(fields) == 6
}

// serviceNames are what the not-imported notes call services that
// switchyard has no target for.
var serviceNames = map[string]string{
	"firehose":            "Amazon Data Firehose",
	"logs":                "CloudWatch Logs",
	"codebuild":           "CodeBuild",
	"codepipeline":        "CodePipeline",
	"ssm":                 "Systems Manager",
	"ssm-incidents":       "Systems Manager Incident Manager",
	"batch":               "AWS Batch",
	"ec2":                 "EC2",
	"redshift":            "Redshift",
	"redshift-serverless": "Redshift Serverless",
	"sagemaker":           "SageMaker",
	"inspector":           "Inspector",
	"appsync":             "AppSync",
	"execute-api":         "API Gateway",
	"autoscaling":         "EC2 Auto Scaling",
}
