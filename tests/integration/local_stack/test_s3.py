"""S3 notifications reach the spectrum function as the template's prefix and suffix filter says."""

from __future__ import annotations

from callrec_local.lambda_runtime import Invocation
from callrec_local.stack import LocalStack

SPECTRUM = "SpectrumFunction"


def notified_keys(invocations: list[Invocation]) -> list[str]:
    return [
        record["s3"]["object"]["key"]
        for invocation in invocations
        if invocation.source == "s3" and invocation.attempt == 1
        for record in invocation.event["Records"]
    ]


def test_only_wavs_under_recordings_notify_the_spectrum_function(stack: LocalStack) -> None:
    # Given objects that do not match the filter, written first
    s3, bucket = stack.s3(), stack.bucket_name
    for key in ("spectrograms/call-1.png", "recordings/call-1.png", "staging/call-1.wav"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"not a trigger")

    # When WAVs land under recordings/, one of them by multipart upload as the recorder writes
    s3.put_object(Bucket=bucket, Key="recordings/call 1/mixed.wav", Body=b"RIFF")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="recordings/call-2/mixed.wav")
    part = s3.upload_part(
        Bucket=bucket,
        Key="recordings/call-2/mixed.wav",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"RIFF" * 10,
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="recordings/call-2/mixed.wav",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    invocations = stack.wait_for(lambda invs: len(notified_keys(invs)) >= 2, timeout_s=20)

    # Then only the two WAVs were notified, keys URL-encoded as S3 does, as async invocations
    assert sorted(notified_keys(invocations)) == [
        "recordings/call+1/mixed.wav",
        "recordings/call-2/mixed.wav",
    ]
    spectrum = [i for i in invocations if i.source == "s3"]
    assert {i.function_name for i in spectrum} == {stack.function_name(SPECTRUM)}
    assert {i.invocation_type for i in spectrum} == {"Event"}
    event_names = {
        r["s3"]["object"]["key"]: r["eventName"] for i in spectrum for r in i.event["Records"]
    }
    assert event_names["recordings/call-2/mixed.wav"] == "ObjectCreated:CompleteMultipartUpload"
    record = spectrum[0].event["Records"][0]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
