"""Village agent (村便民服务站): the proxy agent's offline laptop. Its program lands with the next issue."""
