"""Channels: the accounts siyu talks through (WeChat OA, WeCom, SMS, email, webhooks), one adapter each.

`base` is the adapter protocol, `service` the one inbound pipeline (`receive`) and the one outbound
path (`queue_send` → the `channels.deliver` job) every adapter and every sender goes through.

Importing the package registers the event-webhook subscriber (`webhook_events`), so every process that
records events (the app, the worker, the CLI) queues deliveries for the webhook accounts that want them.
"""

from siyu.channels import webhook_events as _webhook_events  # noqa: F401
