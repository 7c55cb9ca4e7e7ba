package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/httpapi"
)

// The GigaWallet family's home in the ledger: its accounts are customers of this project, with
// wallets of this asset (DOGE, 10^8 koinu).
const (
	gigaWalletProjectID = "gigawallet"
	gigaWalletAssetID   = "doge"
	walletSeedFileName  = "wallet.seed"
)

// gigaWalletConfig loads the cluster's wallet seed and returns the GigaWallet API's
// configuration, or nil (the API off, said in the log) when a node of a multi-node cluster has
// no seed: every node must use the same one, so none is made up. A node alone with neither a
// seed file nor the environment variable creates <data-dir>/wallet.seed on first start.
func gigaWalletConfig(cfg *serveConfig, logger *slog.Logger) (*httpapi.GigaWalletConfig, error) {
	name := cfg.Network
	if name == "" {
		name = dogecoin.Testnet.Name // GigaWallet's default
	}
	network, err := dogecoin.ParseNetwork(name)
	if err != nil {
		return nil, fmt.Errorf("--network: %w", err)
	}
	env := os.Getenv(dogecoin.SeedEnvVar)
	path := cfg.WalletSeedFile
	alone := cfg.Peers == "" && cfg.GossipAddr == ""
	if path == "" && env == "" {
		if !alone {
			logger.Warn("GigaWallet API off: no --wallet-seed-file or " + dogecoin.SeedEnvVar + " (every node of a cluster needs the same seed)")
			return nil, nil
		}
		path = filepath.Join(cfg.DataDir, walletSeedFileName)
		if _, statErr := os.Stat(path); errors.Is(statErr, fs.ErrNotExist) {
			if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
				return nil, err
			}
			if _, err := dogecoin.CreateSeedFile(path); err != nil {
				return nil, fmt.Errorf("create the wallet seed: %w", err)
			}
			logger.Warn("created a new wallet seed: every Dogecoin key of this node derives from it; back it up, it cannot be recovered",
				"path", path)
		}
	}
	seed, err := dogecoin.LoadSeed(path, env)
	if err != nil {
		return nil, fmt.Errorf("wallet seed: %w", err)
	}
	keys, err := dogecoin.NewKeychain(seed, network)
	if err != nil {
		return nil, fmt.Errorf("wallet seed: %w", err)
	}
	logger.Info("GigaWallet API on", "network", network.Name, "project", gigaWalletProjectID)
	serviceName := cfg.ServiceName
	if serviceName == "" {
		serviceName = defaultServiceName
	}
	root := strings.TrimSuffix(cfg.PubAPIRootURL, "/")
	if root == "" {
		root = "http://" + cfg.PublicAddr
	}
	return &httpapi.GigaWalletConfig{ProjectID: gigaWalletProjectID, AssetID: gigaWalletAssetID, Network: network, Keys: keys,
		ConfirmationsNeeded: int32(cfg.ConfirmationsNeeded), PubAPIRootURL: root,
		ServiceName: serviceName, ServiceDomain: cfg.ServiceDomain, ServiceIconURL: cfg.ServiceIconURL}, nil
}
