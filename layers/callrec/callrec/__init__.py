"""callrec: the serverless call recorder for Amazon Connect.

Domain modules (Matroska, alignment, WAV, spectrum) import no boto3; integration modules
(KVS, S3, DynamoDB, Kinesis) do. Lambda handlers in functions/ import only this package.
"""

__version__ = "0.1.0"
