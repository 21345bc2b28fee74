"""The lengths a server's fields may have, written once: the model's columns, the portal's
forms, the API's serializers and the services' checks all read them. (The on-premise agent,
distributed apart, keeps its own copy of what it sends.)"""

SERVER_NAME_MAX = 100
# What an AppSuite server says about itself at activation and sync.
FINGERPRINT_MAX = 200
HOSTNAME_MAX = 255
VERSION_MAX = 64
# What it presents: a pasted activation token (its real form is shorter), an offline
# request's nonce.
TOKEN_INPUT_MAX = 200
NONCE_MAX = 200
