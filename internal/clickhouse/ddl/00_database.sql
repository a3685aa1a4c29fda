CREATE DATABASE {{ident .Database}}{{.OnCluster}}
