"""A customer interaction's recordings in the recordings table: finding them, and keeping
Connect's disconnects on them.

A transfer creates a new contact with the same InitialContactId ("If this contact is related to
other contacts, this is the ID of the initial contact",
https://docs.aws.amazon.com/connect/latest/APIReference/API_Contact.html), so the recordings of
one interaction are the items sharing `initial_contact_id`, found through the sparse
`interaction-recordings` index (keys only: contact ids, in order of registration).

Each recording item keeps the disconnects of its interaction's contacts (`disconnects`, contact
id to epoch milliseconds), its own contact's and the others': when the fragments keep the
original ContactId after a transfer, the original recording runs on until the contact the call
was transferred to disconnects, and that disconnect is how its recorder learns it
(docs/contact-lifecycle.md). A disconnect is written only on items that exist: the events of
contacts nobody records create nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from callrec.contacts import ContactDisconnect
from callrec.recordings import INTERACTION_INDEX, RecordingStoreError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger(child=True)


class InteractionStore:
    """The recordings table, seen by interaction."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def recordings_of(self, initial_contact_id: str) -> list[str]:
        """Contact ids of the interaction's recordings, in order of registration.

        The index is eventually consistent: an item registered a moment ago may be missing
        (DynamoDB: "changes to the table data are propagated to the global secondary indexes
        within a fraction of a second, under normal conditions").
        """
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            IndexName=INTERACTION_INDEX,
            KeyConditionExpression="initial_contact_id = :initial",
            ExpressionAttributeValues={":initial": {"S": initial_contact_id}},
        )
        try:
            return [item["contact_id"]["S"] for page in pages for item in page.get("Items", [])]
        except ClientError as exc:
            raise RecordingStoreError(
                f"interaction {initial_contact_id}: cannot list its recordings: {exc}"
            ) from exc

    def disconnects_of(self, contact_id: str) -> dict[str, int]:
        """The disconnects kept on a recording (contact id to epoch ms): one consistent read of
        that attribute alone."""
        try:
            item = self._client.get_item(
                TableName=self._table,
                Key={"contact_id": {"S": contact_id}},
                ProjectionExpression="disconnects",
                ConsistentRead=True,
            ).get("Item", {})
        except ClientError as exc:
            raise RecordingStoreError(
                f"contact {contact_id}: cannot read its disconnects: {exc}"
            ) from exc
        entries = item.get("disconnects", {}).get("M", {})
        return {contact: int(value["N"]) for contact, value in entries.items()}

    def note_disconnect(self, disconnect: ContactDisconnect) -> list[str]:
        """Keep the disconnect on the contact's own recording and on every other recording of
        its interaction; the contact ids of the recordings that now have it."""
        # The contact's own item first, by key (strongly consistent), then the index.
        candidates = [disconnect.contact_id] + [
            contact
            for contact in self.recordings_of(disconnect.initial_contact_id)
            if contact != disconnect.contact_id
        ]
        noted = [c for c in candidates if self._set(c, disconnect)]
        if noted:
            logger.info(
                "disconnect noted",
                contact_id=disconnect.contact_id,
                source=disconnect.source,
                disconnected_at_ms=disconnect.disconnected_at_ms,
                recordings=noted,
            )
        return noted

    def _set(self, recording: str, disconnect: ContactDisconnect) -> bool:
        """`disconnects[contact] = time` on one item; False if there is no such item."""
        names = {"#d": "disconnects", "#c": disconnect.contact_id}
        values: dict[str, Any] = {
            ":at": {"N": str(disconnect.disconnected_at_ms)},
        }
        try:
            self._update(
                recording, "SET #d.#c = :at", "attribute_exists(contact_id)", names, values
            )
        except ClientError as exc:
            code = _code(exc)
            if code == "ConditionalCheckFailedException":
                return False  # nobody records this contact
            if code != "ValidationException":
                raise RecordingStoreError(
                    f"contact {recording}: cannot note the disconnect of "
                    f"{disconnect.contact_id}: {exc}"
                ) from exc
            # Registered before items had `disconnects`: the map is created with its entry.
            values = {":map": {"M": {disconnect.contact_id: values[":at"]}}}
            try:
                self._update(
                    recording,
                    "SET #d = :map",
                    "attribute_exists(contact_id) AND attribute_not_exists(#d)",
                    {"#d": "disconnects"},
                    values,
                )
            except ClientError as again:
                if _code(again) == "ConditionalCheckFailedException":
                    # Created meanwhile by another disconnect: the path exists now.
                    self._update(
                        recording,
                        "SET #d.#c = :at",
                        "attribute_exists(contact_id)",
                        names,
                        {":at": {"N": str(disconnect.disconnected_at_ms)}},
                    )
                else:
                    raise RecordingStoreError(
                        f"contact {recording}: cannot note the disconnect of "
                        f"{disconnect.contact_id}: {again}"
                    ) from again
        return True

    def _update(
        self,
        recording: str,
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"contact_id": {"S": recording}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
