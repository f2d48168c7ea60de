"""The WeChat Official Account channel: callbacks, the API client, the adapter and the OA's own API."""

from siyu.channels.wechat_oa import adapter as adapter

__all__ = ["adapter"]
