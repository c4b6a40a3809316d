package awstest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/switchyard-dev/switchyard/internal/awstest"
)

func ecsServer(t *testing.T, opts ...func(*awstest.Options)) (*awstest.Server, *awstest.ManualClock) {
	t.Helper()
	s, clk := newServer(t, opts...)
	if _, err := s.ECS().RegisterTaskDefinition(awstest.TaskDefinition{
		Family: "transcode", Containers: []awstest.ContainerDefinition{{Name: "app", Image: "app:1"}, {Name: "sidecar", Image: "sc:1"}},
		RequiresCompatibilities: []string{"FARGATE"}, CPU: "256", Memory: "512", Tags: []awstest.Tag{{Key: "team", Value: "media"}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ECS().RegisterTaskDefinition(awstest.TaskDefinition{
		Family: "transcode", Containers: []awstest.ContainerDefinition{{Name: "app", Image: "app:2"}}, RequiresCompatibilities: []string{"FARGATE"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ECS().RegisterTaskDefinition(awstest.TaskDefinition{
		Family: "batch", NetworkMode: "bridge", Containers: []awstest.ContainerDefinition{{Name: "job"}},
	}); err != nil {
		t.Fatal(err)
	}
	s.ECS().CreateCluster("jobs")
	return s, clk
}

func fargateInput() *ecs.RunTaskInput {
	return &ecs.RunTaskInput{
		Cluster:        aws.String("jobs"),
		TaskDefinition: aws.String("transcode:1"),
		LaunchType:     ecstypes.LaunchTypeFargate,
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"}, AssignPublicIp: ecstypes.AssignPublicIpDisabled,
		}},
	}
}

func TestECS_RunTaskWithOverrides(t *testing.T) {
	t.Parallel()
	s, _ := ecsServer(t)
	in := fargateInput()
	in.StartedBy = aws.String("switchyard/rule_1")
	in.Tags = []ecstypes.Tag{{Key: aws.String("event"), Value: aws.String("e-1")}}
	in.PropagateTags = ecstypes.PropagateTagsTaskDefinition
	in.EnableExecuteCommand = true
	in.Count = aws.Int32(2)
	in.Overrides = &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{
		Name: aws.String("app"), Command: []string{"transcode", "s3://b/k"},
		Environment: []ecstypes.KeyValuePair{{Name: aws.String("INPUT"), Value: aws.String("k")}},
		Cpu:         aws.Int32(128), Memory: aws.Int32(256),
	}}}
	out, err := s.ECSClient().RunTask(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tasks) != 2 || len(out.Failures) != 0 {
		t.Fatalf("out %+v", out)
	}
	task := out.Tasks[0]
	arnPrefix := "arn:aws:ecs:us-east-1:123456789012:task/jobs/"
	checks := map[string]bool{
		"taskArn":           strings.HasPrefix(aws.ToString(task.TaskArn), arnPrefix),
		"clusterArn":        aws.ToString(task.ClusterArn) == "arn:aws:ecs:us-east-1:123456789012:cluster/jobs",
		"taskDefinitionArn": aws.ToString(task.TaskDefinitionArn) == "arn:aws:ecs:us-east-1:123456789012:task-definition/transcode:1",
		"lastStatus":        aws.ToString(task.LastStatus) == "PROVISIONING",
		"desiredStatus":     aws.ToString(task.DesiredStatus) == "RUNNING",
		"startedBy":         aws.ToString(task.StartedBy) == "switchyard/rule_1",
		"group":             aws.ToString(task.Group) == "family:transcode",
		"launchType":        task.LaunchType == ecstypes.LaunchTypeFargate,
		"platformVersion":   aws.ToString(task.PlatformVersion) == "1.4.0",
		"enableExec":        task.EnableExecuteCommand,
		"createdAt":         task.CreatedAt != nil && task.CreatedAt.Equal(epoch),
		"startedAt":         task.StartedAt == nil,
		"version":           task.Version == 1,
		"containers":        len(task.Containers) == 2 && aws.ToString(task.Containers[0].Name) == "app" && aws.ToString(task.Containers[0].LastStatus) == "PENDING" && aws.ToString(task.Containers[0].Cpu) == "128",
		"containerArn":      strings.HasPrefix(aws.ToString(task.Containers[0].ContainerArn), "arn:aws:ecs:us-east-1:123456789012:container/jobs/"),
		"tags":              fmt.Sprint(tagMap(task.Tags)) == "map[event:e-1 team:media]",
		"attachment":        len(task.Attachments) == 1 && aws.ToString(task.Attachments[0].Type) == "ElasticNetworkInterface",
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("%s wrong in %+v", name, task)
		}
	}
	ov := task.Overrides.ContainerOverrides
	if len(ov) != 2 || aws.ToString(ov[0].Name) != "app" || fmt.Sprint(ov[0].Command) != "[transcode s3://b/k]" ||
		aws.ToString(ov[0].Environment[0].Value) != "k" || aws.ToInt32(ov[0].Memory) != 256 || aws.ToString(ov[1].Name) != "sidecar" {
		t.Fatalf("overrides %+v", ov)
	}
	if n := len(s.ECS().Tasks("jobs")); n != 2 {
		t.Fatalf("%d tasks", n)
	}
}

func tagMap(tags []ecstypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func TestECS_RunTaskValidation(t *testing.T) {
	t.Parallel()
	s, _ := ecsServer(t)
	c := s.ECSClient()
	tests := []struct {
		name  string
		edit  func(*ecs.RunTaskInput)
		check func(*testing.T, error)
	}{
		{"cluster not found", func(in *ecs.RunTaskInput) { in.Cluster = aws.String("nope") }, isA[*ecstypes.ClusterNotFoundException]("ClusterNotFoundException")},
		{"task definition not found", func(in *ecs.RunTaskInput) { in.TaskDefinition = aws.String("transcode:9") }, isA[*ecstypes.ClientException]("ClientException")},
		{"launch type and capacity provider", func(in *ecs.RunTaskInput) {
			in.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}}
		}, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
		{"FARGATE without awsvpc configuration", func(in *ecs.RunTaskInput) { in.NetworkConfiguration = nil }, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
		{"no subnets", func(in *ecs.RunTaskInput) { in.NetworkConfiguration.AwsvpcConfiguration.Subnets = []string{} }, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
		{"override for an unknown container", func(in *ecs.RunTaskInput) {
			in.Overrides = &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{Name: aws.String("ghost")}}}
		}, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
		{"overrides over 8192 characters", func(in *ecs.RunTaskInput) {
			in.Overrides = &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{Name: aws.String("app"), Command: []string{strings.Repeat("x", 8200)}}}}
		}, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
		{"startedBy with a space", func(in *ecs.RunTaskInput) { in.StartedBy = aws.String("rule one") }, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
		{"startedBy over 128", func(in *ecs.RunTaskInput) { in.StartedBy = aws.String(strings.Repeat("a", 129)) }, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
		{"count 11", func(in *ecs.RunTaskInput) { in.Count = aws.Int32(11) }, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
		{"client token over 64", func(in *ecs.RunTaskInput) { in.ClientToken = aws.String(strings.Repeat("t", 65)) }, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
		{"reserved tag prefix", func(in *ecs.RunTaskInput) {
			in.Tags = []ecstypes.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}
		}, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
		{"network configuration on bridge mode", func(in *ecs.RunTaskInput) {
			in.TaskDefinition, in.LaunchType = aws.String("batch"), ecstypes.LaunchTypeEc2
		}, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
		{"platform version on EC2", func(in *ecs.RunTaskInput) {
			in.TaskDefinition, in.LaunchType, in.NetworkConfiguration, in.PlatformVersion = aws.String("batch"), ecstypes.LaunchTypeEc2, nil, aws.String("1.4.0")
		}, isA[*ecstypes.InvalidParameterException]("InvalidParameterException")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := fargateInput()
			tt.edit(in)
			_, err := c.RunTask(t.Context(), in)
			tt.check(t, err)
			if httpStatus(t, err) != 400 {
				t.Fatalf("status %d", httpStatus(t, err))
			}
		})
	}
	if n := len(s.ECS().Tasks("jobs")); n != 0 {
		t.Fatalf("rejected calls launched %d tasks", n)
	}
}

func TestECS_RunTaskPicksLaunchTypeAndCapacityProvider(t *testing.T) {
	t.Parallel()
	s, _ := ecsServer(t)
	c := s.ECSClient()
	in := fargateInput()
	in.LaunchType = ""
	in.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}}
	out, err := c.RunTask(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if task := out.Tasks[0]; task.LaunchType != ecstypes.LaunchTypeFargate || aws.ToString(task.CapacityProviderName) != "FARGATE_SPOT" {
		t.Fatalf("task %+v", task)
	}
	// Neither given: the definition's compatibility decides; the latest
	// revision when none is named.
	in = fargateInput()
	in.LaunchType, in.TaskDefinition = "", aws.String("transcode")
	out, err = c.RunTask(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if task := out.Tasks[0]; task.LaunchType != ecstypes.LaunchTypeFargate || !strings.HasSuffix(aws.ToString(task.TaskDefinitionArn), "transcode:2") {
		t.Fatalf("task %+v", task)
	}
	// EC2 bridge task: no network configuration, starts PENDING.
	out, err = c.RunTask(t.Context(), &ecs.RunTaskInput{TaskDefinition: aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/batch:1")})
	if err != nil {
		t.Fatal(err)
	}
	if task := out.Tasks[0]; task.LaunchType != ecstypes.LaunchTypeEc2 || aws.ToString(task.LastStatus) != "PENDING" || !strings.Contains(aws.ToString(task.TaskArn), "task/default/") {
		t.Fatalf("task %+v", task)
	}
}

func TestECS_ClientTokenIsIdempotent(t *testing.T) {
	t.Parallel()
	s, _ := ecsServer(t)
	c := s.ECSClient()
	in := fargateInput()
	in.ClientToken = aws.String("delivery-1")
	first, err := c.RunTask(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.RunTask(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(first.Tasks[0].TaskArn) != aws.ToString(second.Tasks[0].TaskArn) {
		t.Fatalf("second call launched %s", aws.ToString(second.Tasks[0].TaskArn))
	}
	if n := len(s.ECS().Tasks("jobs")); n != 1 {
		t.Fatalf("%d tasks exist", n)
	}
	// The same token in another cluster is another request.
	other := fargateInput()
	other.Cluster, other.ClientToken = aws.String("default"), aws.String("delivery-1")
	if _, err := c.RunTask(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	// The same token with other parameters is refused.
	changed := fargateInput()
	changed.ClientToken, changed.StartedBy = aws.String("delivery-1"), aws.String("someone-else")
	_, err = c.RunTask(t.Context(), changed)
	isA[*ecstypes.InvalidParameterException]("InvalidParameterException")(t, err)
	// The SDK fills in a token when none is given, so plain retries by a
	// caller are not deduplicated unless it passes one.
	if _, err := c.RunTask(t.Context(), fargateInput()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunTask(t.Context(), fargateInput()); err != nil {
		t.Fatal(err)
	}
	if n := len(s.ECS().Tasks("jobs")); n != 3 {
		t.Fatalf("%d tasks exist", n)
	}
}

func TestECS_LostResponseThenRetryWithTheSameToken(t *testing.T) {
	t.Parallel()
	s, _ := ecsServer(t)
	c := s.ECSClient()
	s.FailNext("ecs:RunTask", 1, awstest.Fault{Commit: true, Code: "ServerException", Message: "oops"})
	in := fargateInput()
	in.ClientToken = aws.String("tok")
	_, err := c.RunTask(t.Context(), in)
	var se *ecstypes.ServerException
	if !errors.As(err, &se) {
		t.Fatalf("got %v", err)
	}
	tasks := s.ECS().Tasks("jobs")
	if len(tasks) != 1 || tasks[0].ClientToken != "tok" {
		t.Fatalf("the committed call launched %+v", tasks)
	}
	out, err := c.RunTask(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Tasks[0].TaskArn) != tasks[0].TaskARN || len(s.ECS().Tasks("jobs")) != 1 {
		t.Fatalf("retry launched another task: %+v", out.Tasks)
	}
}

func TestECS_RunTaskFailures(t *testing.T) {
	t.Parallel()
	s, _ := ecsServer(t)
	c := s.ECSClient()
	s.ECS().FailRunTask(1, awstest.Failure{ARN: "arn:aws:ecs:us-east-1:123456789012:container-instance/jobs/abc", Reason: "RESOURCE:MEMORY"})
	in := fargateInput()
	in.Count = aws.Int32(2)
	in.ClientToken = aws.String("t1")
	out, err := c.RunTask(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tasks) != 0 || len(out.Failures) != 2 || aws.ToString(out.Failures[0].Reason) != "RESOURCE:MEMORY" ||
		!strings.Contains(aws.ToString(out.Failures[0].Arn), "container-instance") {
		t.Fatalf("out %+v", out)
	}
	// Same token: the same answer, nothing launched.
	out, err = c.RunTask(t.Context(), in)
	if err != nil || len(out.Tasks) != 0 || len(out.Failures) != 2 {
		t.Fatalf("retry with the same token: %+v %v", out, err)
	}
	// A fresh token launches.
	in.ClientToken = aws.String("t2")
	out, err = c.RunTask(t.Context(), in)
	if err != nil || len(out.Tasks) != 2 || len(out.Failures) != 0 {
		t.Fatalf("fresh token: %+v %v", out, err)
	}
}

func TestECS_TaskLifecycle(t *testing.T) {
	t.Parallel()
	s, clk := ecsServer(t)
	c := s.ECSClient()
	out, err := c.RunTask(t.Context(), fargateInput())
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	id := arn[strings.LastIndexByte(arn, '/')+1:]
	describe := func() ecstypes.Task {
		t.Helper()
		d, err := c.DescribeTasks(t.Context(), &ecs.DescribeTasksInput{Cluster: aws.String("jobs"), Tasks: []string{id}})
		if err != nil || len(d.Tasks) != 1 {
			t.Fatalf("describe: %+v %v", d, err)
		}
		return d.Tasks[0]
	}
	for _, want := range []string{"PENDING", "RUNNING"} {
		clk.Advance(time.Second)
		got, err := s.ECS().AdvanceTask(arn)
		if err != nil || got != want {
			t.Fatalf("advance: %s %v, want %s", got, err, want)
		}
	}
	task := describe()
	if aws.ToString(task.LastStatus) != "RUNNING" || !task.StartedAt.Equal(epoch.Add(2*time.Second)) || !task.PullStartedAt.Equal(epoch.Add(time.Second)) ||
		aws.ToString(task.Containers[0].LastStatus) != "RUNNING" || task.Connectivity != ecstypes.ConnectivityConnected || task.Version != 3 {
		t.Fatalf("running task %+v", task)
	}
	clk.Advance(time.Second)
	stop, err := c.StopTask(t.Context(), &ecs.StopTaskInput{Cluster: aws.String("jobs"), Task: &arn, Reason: aws.String("no longer needed")})
	if err != nil {
		t.Fatal(err)
	}
	if st := stop.Task; aws.ToString(st.DesiredStatus) != "STOPPED" || aws.ToString(st.LastStatus) != "RUNNING" ||
		st.StopCode != ecstypes.TaskStopCodeUserInitiated || aws.ToString(st.StoppedReason) != "no longer needed" || st.StoppingAt == nil {
		t.Fatalf("stopping task %+v", st)
	}
	if got, _ := s.ECS().AdvanceTask(id); got != "STOPPED" {
		t.Fatalf("advance after stop: %s", got)
	}
	task = describe()
	if aws.ToString(task.LastStatus) != "STOPPED" || task.StoppedAt == nil || aws.ToString(task.Containers[1].LastStatus) != "STOPPED" {
		t.Fatalf("stopped task %+v", task)
	}

	// A task that ends on its own, with exit codes.
	out, err = c.RunTask(t.Context(), fargateInput())
	if err != nil {
		t.Fatal(err)
	}
	arn2 := aws.ToString(out.Tasks[0].TaskArn)
	if err := s.ECS().SetTaskStatus(arn2, awstest.TaskRunning); err != nil {
		t.Fatal(err)
	}
	if err := s.ECS().StopTask(arn2, awstest.StopOptions{ExitCodes: map[string]int{"app": 1, "sidecar": 0}, ContainerReasons: map[string]string{"app": "OutOfMemoryError"}}); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeTasks(t.Context(), &ecs.DescribeTasksInput{Cluster: aws.String("jobs"), Tasks: []string{arn2}})
	if err != nil {
		t.Fatal(err)
	}
	task = d.Tasks[0]
	if task.StopCode != ecstypes.TaskStopCodeEssentialContainerExited || aws.ToInt32(task.Containers[0].ExitCode) != 1 ||
		task.Containers[1].ExitCode == nil || aws.ToString(task.Containers[0].Reason) != "OutOfMemoryError" || aws.ToString(task.DesiredStatus) != "STOPPED" {
		t.Fatalf("ended task %+v", task)
	}
}

func TestECS_DescribeTasksFailuresAndTags(t *testing.T) {
	t.Parallel()
	s, _ := ecsServer(t)
	c := s.ECSClient()
	in := fargateInput()
	in.Tags = []ecstypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}
	out, err := c.RunTask(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	d, err := c.DescribeTasks(t.Context(), &ecs.DescribeTasksInput{Cluster: aws.String("jobs"), Tasks: []string{arn, "0123456789abcdef0123456789abcdef"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Tasks) != 1 || len(d.Tasks[0].Tags) != 0 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" ||
		aws.ToString(d.Failures[0].Arn) != "arn:aws:ecs:us-east-1:123456789012:task/jobs/0123456789abcdef0123456789abcdef" {
		t.Fatalf("describe %+v", d)
	}
	d, err = c.DescribeTasks(t.Context(), &ecs.DescribeTasksInput{Cluster: aws.String("jobs"), Tasks: []string{arn}, Include: []ecstypes.TaskField{ecstypes.TaskFieldTags}})
	if err != nil || len(d.Tasks[0].Tags) != 1 {
		t.Fatalf("with tags: %+v %v", d, err)
	}
	// A task of another cluster is missing here.
	d, err = c.DescribeTasks(t.Context(), &ecs.DescribeTasksInput{Tasks: []string{arn}})
	if err != nil || len(d.Failures) != 1 {
		t.Fatalf("other cluster: %+v %v", d, err)
	}
	_, err = c.DescribeTasks(t.Context(), &ecs.DescribeTasksInput{Cluster: aws.String("jobs"), Tasks: []string{}})
	isA[*ecstypes.InvalidParameterException]("InvalidParameterException")(t, err)
	_, err = c.StopTask(t.Context(), &ecs.StopTaskInput{Cluster: aws.String("jobs"), Task: aws.String("nope")})
	isA[*ecstypes.InvalidParameterException]("InvalidParameterException")(t, err)
}

func TestECS_ListTasksFiltersAndPages(t *testing.T) {
	t.Parallel()
	s, _ := ecsServer(t)
	c := s.ECSClient()
	var arns []string
	for i := range 5 {
		in := fargateInput()
		in.StartedBy = aws.String(fmt.Sprint("sb", i%2))
		out, err := c.RunTask(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, aws.ToString(out.Tasks[0].TaskArn))
	}
	if err := s.ECS().StopTask(arns[4], awstest.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	p := ecs.NewListTasksPaginator(c, &ecs.ListTasksInput{Cluster: aws.String("jobs"), MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, page.TaskArns...)
	}
	if fmt.Sprint(got) != fmt.Sprint(arns[:4]) || pages != 2 {
		t.Fatalf("%d pages: %v", pages, got)
	}
	for _, tt := range []struct {
		name string
		in   ecs.ListTasksInput
		want []string
	}{
		{"startedBy", ecs.ListTasksInput{StartedBy: aws.String("sb1")}, []string{arns[1], arns[3]}},
		{"stopped", ecs.ListTasksInput{DesiredStatus: ecstypes.DesiredStatusStopped}, []string{arns[4]}},
		{"family", ecs.ListTasksInput{Family: aws.String("transcode")}, arns[:4]},
		{"other family", ecs.ListTasksInput{Family: aws.String("batch")}, nil},
		{"launch type", ecs.ListTasksInput{LaunchType: ecstypes.LaunchTypeEc2}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Cluster = aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/jobs")
			out, err := c.ListTasks(t.Context(), &in)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(out.TaskArns) != fmt.Sprint(tt.want) && !(len(out.TaskArns) == 0 && len(tt.want) == 0) {
				t.Fatalf("got %v, want %v", out.TaskArns, tt.want)
			}
		})
	}
	_, err := c.ListTasks(t.Context(), &ecs.ListTasksInput{Cluster: aws.String("jobs"), MaxResults: aws.Int32(101)})
	isA[*ecstypes.InvalidParameterException]("InvalidParameterException")(t, err)
	_, err = c.ListTasks(t.Context(), &ecs.ListTasksInput{Cluster: aws.String("jobs"), NextToken: aws.String("garbage")})
	isA[*ecstypes.InvalidParameterException]("InvalidParameterException")(t, err)
	_, err = c.ListTasks(t.Context(), &ecs.ListTasksInput{Cluster: aws.String("nope")})
	isA[*ecstypes.ClusterNotFoundException]("ClusterNotFoundException")(t, err)
}

func TestECS_StartRunningOption(t *testing.T) {
	t.Parallel()
	s, _ := ecsServer(t, func(o *awstest.Options) { o.ECS.StartRunning = true })
	out, err := s.ECSClient().RunTask(t.Context(), fargateInput())
	if err != nil || aws.ToString(out.Tasks[0].LastStatus) != "RUNNING" || out.Tasks[0].StartedAt == nil {
		t.Fatalf("%+v %v", out, err)
	}
}
