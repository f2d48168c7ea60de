"""WeCom (企业微信): a self-built app's callbacks and external-contact API (kind `wecom`), and WeChat
Customer Service (微信客服, kind `wecom_kf`). See docs/wecom.md."""
