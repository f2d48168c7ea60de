"""Channels: the accounts siyu talks through (WeChat OA, WeCom, SMS, email, webhooks), one adapter each.

`base` is the adapter protocol, `service` the one inbound pipeline (`receive`) and the one outbound
path (`queue_send` → the `channels.deliver` job) every adapter and every sender goes through.
"""
