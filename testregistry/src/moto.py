# Prepares a moto server for Berth's ECR tests (run with moto's own python, which has boto3):
# an IAM user whose key may mint ECR tokens and assume a role, a user whose key may do
# nothing, and that role. moto checks SigV4 and IAM policies only after its first
# INITIAL_NO_AUTH_ACTION_COUNT requests: these are those requests, exactly SETUP_REQUESTS.
import json
import sys

import boto3

url = sys.argv[1]
setup = dict(endpoint_url=url, region_name="us-east-1",
             aws_access_key_id="AKIASETUPSETUPSETUP0", aws_secret_access_key="setup")
iam = boto3.client("iam", **setup)
allow = lambda actions: json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": actions, "Resource": "*"}]})
iam.create_user(UserName="berth-ecr")                                                   # 1
iam.put_user_policy(UserName="berth-ecr", PolicyName="pull",
                    PolicyDocument=allow(["ecr:GetAuthorizationToken", "sts:AssumeRole"]))  # 2
key = iam.create_access_key(UserName="berth-ecr")["AccessKey"]                          # 3
iam.create_user(UserName="berth-nothing")                                               # 4
bare = iam.create_access_key(UserName="berth-nothing")["AccessKey"]                     # 5
trust = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
role = iam.create_role(RoleName="berth-ecr-pull", AssumeRolePolicyDocument=trust)["Role"]  # 6
iam.put_role_policy(RoleName="berth-ecr-pull", PolicyName="pull",
                    PolicyDocument=allow("ecr:GetAuthorizationToken"))                  # 7
print(json.dumps({
    "access_key_id": key["AccessKeyId"],
    "secret_access_key": key["SecretAccessKey"],
    "bare_access_key_id": bare["AccessKeyId"],
    "bare_secret_access_key": bare["SecretAccessKey"],
    "role_arn": role["Arn"],
}))
