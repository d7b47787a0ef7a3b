import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from orders.api.services import api_client_create
from orders.api.webhook_addresses import url_problem
from orders.models import ApiClient


class Command(BaseCommand):
    help = "Creates a marketplace API client and prints its key id and secret (shown only this once) as JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--webhook-url", default=None, help="Also register a webhook endpoint at this URL.")

    def handle(self, *args, name: str, webhook_url: str | None, **options) -> None:
        if ApiClient.objects.filter(name=name).exists():
            raise CommandError(f"A client named {name!r} exists already: rotate its secret in the admin.")
        if webhook_url:
            try:
                URLValidator(schemes=["http", "https"])(webhook_url)
            except ValidationError as error:
                raise CommandError(f"Not a webhook URL: {webhook_url}") from error
            if (problem := url_problem(webhook_url)) is not None:
                raise CommandError(f"Not a webhook URL: {webhook_url}: {problem}")
        issued = api_client_create(name=name, webhook_url=webhook_url)
        document = {"key_id": issued.client.key_id, "secret": issued.secret}
        if issued.webhook_secret:
            document["webhook_secret"] = issued.webhook_secret
        self.stdout.write(json.dumps(document))
