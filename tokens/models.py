# Servers, capacity assignments, activation tokens and credentials arrive with the portal issue.
